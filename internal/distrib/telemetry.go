package distrib

import (
	"sort"
	"strings"
	"time"
)

// ObjectSiteCounters are the latest counters one object reported on one
// site.
type ObjectSiteCounters struct {
	// Owner is the tenant that owns the site (the object's own tenant, or
	// the tenant that leased the site to it).
	Owner string
	Site  string
	// Online says whether the site's node is connected now.
	Online   bool
	LastSeen time.Time
	Counters map[string]float64
}

// ObjectSites returns the latest counters of tenant's object ref on every
// site that reported some (its own sites and sites leased to it), sorted by
// owner and site. Only that tenant's object is read: another tenant's
// objects on a shared site are never included.
func (d *Distributor) ObjectSites(tenant string, ref ObjectRef) []ObjectSiteCounters {
	k := refKey(ref)
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ObjectSiteCounters
	for key, l := range d.live {
		oc, ok := l.objCounters[tenant][k]
		if !ok {
			continue
		}
		owner, site, _ := strings.Cut(key, "/")
		c := make(map[string]float64, len(oc.counters))
		for n, v := range oc.counters {
			c[n] = v
		}
		out = append(out, ObjectSiteCounters{Owner: owner, Site: site, Online: l.online, LastSeen: l.lastSeen, Counters: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Owner != out[j].Owner {
			return out[i].Owner < out[j].Owner
		}
		return out[i].Site < out[j].Site
	})
	return out
}

// sharedListenerObjects returns, for a snapshot holding several tenants'
// objects, the wire keys of load balancers whose listener port another
// tenant's load balancer also uses there (different domains on one port).
// Their per-listener counters (listener_connections) would count the other
// tenant's connections too, so the console drops those counters.
func (d *Distributor) sharedListenerObjects(items map[string]*item) map[string]bool {
	tenantsOnPort := map[int]map[string]bool{}
	type use struct {
		wire  string
		ports []int
	}
	var uses []use
	for _, it := range items {
		ts := d.tenants[it.tenant]
		if ts == nil {
			continue
		}
		e := ts.objs[refKey(it.orig)]
		if e == nil || len(e.listens) == 0 {
			continue
		}
		u := use{wire: refKey(it.ref)}
		for _, l := range e.listens {
			if tenantsOnPort[l.port] == nil {
				tenantsOnPort[l.port] = map[string]bool{}
			}
			tenantsOnPort[l.port][it.tenant] = true
			u.ports = append(u.ports, l.port)
		}
		uses = append(uses, u)
	}
	out := map[string]bool{}
	for _, u := range uses {
		for _, p := range u.ports {
			if len(tenantsOnPort[p]) > 1 {
				out[u.wire] = true
			}
		}
	}
	return out
}

// listenerCounterPrefix starts the names of per-object counters that are
// measured per listener rather than per object (listener_connections): on
// a shared site they are dropped for load balancers whose port another
// tenant also uses.
const listenerCounterPrefix = "listener_"
