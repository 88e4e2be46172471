// Package secevents defines the structured security event (WAF, policy, rate-limit and authentication verdicts), a bounded, non-blocking JSON-lines event writer with counters, and the console's per-tenant event store.
//
// On a node, every event goes to the event log (Writer) and, on a
// console-managed node, into the agent's bounded telemetry buffer as a
// distrib.Event of type TelemetryType (Event.Attrs). The console rebuilds
// it with FromAttrs (bounded and masked again: node input is not trusted),
// attributes it to the tenant owning the load balancer and keeps it as a
// Record in a Store.
//
// Why a Store of files and not the console's object store: events arrive
// at the rate of attacks (thousands a second on a busy fleet), are never
// edited and are read only as "the newest N matching a filter". In the
// object store each one would be a revision (watch fan-out, history, etcd
// compaction and quota spent on data nobody watches) and a transaction per
// batch next to the audit chain, which already takes the store's write
// budget. An append-only JSON-lines log per tenant, rotated at a size,
// costs one append per telemetry batch, survives console restarts, and
// bounds disk by construction (StoreOptions.FileBytes × Files per tenant,
// 32 MiB by default); a List keeps only its Limit records (a heap) while
// it scans, and a prefilter skips most lines without decoding them, so
// memory stays bounded too. The price: a List reads the tenant's files (at
// most 32 MiB), and with several consoles each keeps the events of the
// nodes connected to it. Delivery is at most once: the node buffers events
// while the console is away, but a report the console received and had
// not written when it crashed is lost.
package secevents
