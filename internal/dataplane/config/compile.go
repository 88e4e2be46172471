package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/lb"
)

// Compile turns data-plane objects (from files, from the console: the
// source does not matter) into a Table. Objects of other kinds are kept
// aside for the stages that use them (Table.Object).
// An invalid object, or one that refers to a missing or invalid object, is
// skipped and reported in Table.Errors; everything else is compiled. The
// objects passed in are not modified.
func Compile(objs []v1.Object, opts ...CompileOption) *Table {
	c := &compiler{
		t: &Table{
			HTTP:   map[string]*HTTPListener{},
			TCP:    map[string]*TCPListener{},
			Pools:  map[string]*Pool{},
			others: map[string]v1.Object{},
		},
		certs:       map[string]*certEntry{},
		certPEM:     map[string]string{},
		hcs:         map[string]*v1.HealthCheck{},
		badObjects:  map[string]error{},
		owner:       map[string]string{},
		caPEM:       map[string]string{},
		bindings:    map[string][]*v1.SecurityBinding{},
		badBindings: map[string][]string{},
	}
	for _, o := range opts {
		o(&c.opts)
	}
	var certs []*v1.Certificate
	var hcs []*v1.HealthCheck
	var pools []*v1.OriginPool
	var https []*v1.HTTPLoadBalancer
	var tcps []*v1.TCPLoadBalancer
	var bindings []*v1.SecurityBinding
	for _, o := range objs {
		o = deepCopy(o)
		if d, ok := o.(v1.Defaulter); ok {
			d.Default()
		}
		switch x := o.(type) {
		case *v1.Certificate:
			certs = append(certs, x)
		case *v1.HealthCheck:
			hcs = append(hcs, x)
		case *v1.OriginPool:
			pools = append(pools, x)
		case *v1.HTTPLoadBalancer:
			https = append(https, x)
		case *v1.TCPLoadBalancer:
			tcps = append(tcps, x)
		case *v1.SecurityBinding:
			bindings = append(bindings, x)
		default:
			m := o.GetMetadata()
			c.t.others[o.GetTypeMeta().Kind+" "+m.Namespace+"/"+m.Name] = o
			continue
		}
		c.t.Objects = append(c.t.Objects, redacted(o))
	}
	sortByName(certs)
	sortByName(hcs)
	sortByName(pools)
	sortByName(https)
	sortByName(tcps)
	for _, x := range certs {
		c.fail(x, "Certificate", c.certificate(x))
	}
	for _, x := range hcs {
		c.fail(x, "HealthCheck", c.healthCheck(x))
	}
	for _, x := range pools {
		c.fail(x, "OriginPool", c.pool(x))
	}
	c.checkSecurityObjects()
	sortByName(bindings)
	for _, x := range bindings {
		err := c.securityBinding(x)
		c.fail(x, "SecurityBinding", err)
		if err != nil {
			c.badBindings[x.Metadata.Namespace] = append(c.badBindings[x.Metadata.Namespace], x.Metadata.Name)
		}
	}
	for _, x := range https {
		c.fail(x, "HTTPLoadBalancer", c.httpLB(x))
	}
	for _, x := range tcps {
		c.fail(x, "TCPLoadBalancer", c.tcpLB(x))
	}
	for _, l := range c.t.HTTP {
		sort.SliceStable(l.wildcard, func(i, j int) bool { return len(l.wildcard[i].suffix) > len(l.wildcard[j].suffix) })
	}
	c.netPolicies()
	return c.t
}

type certEntry struct {
	cert *tls.Certificate // nil without key
	pool *x509.CertPool
}

type compiler struct {
	t          *Table
	certs      map[string]*certEntry // ns/name
	certPEM    map[string]string
	hcs        map[string]*v1.HealthCheck
	badObjects map[string]error  // "Kind ns/name" -> error
	owner      map[string]string // listener key -> "Kind ns/name"
	opts       compileOptions
	caPEM      map[string]string // ns/name -> certificates of a Certificate
	// bindings are the valid SecurityBindings by namespace (name order);
	// badBindings the names of broken ones.
	bindings    map[string][]*v1.SecurityBinding
	badBindings map[string][]string
}

func key(ns, name string) string { return ns + "/" + name }

func (c *compiler) fail(o v1.Object, kind string, err error) {
	if err == nil {
		return
	}
	m := o.GetMetadata()
	c.badObjects[kind+" "+key(m.Namespace, m.Name)] = err
	c.t.Errors = append(c.t.Errors, ObjectError{Kind: kind, Namespace: m.Namespace, Name: m.Name, Err: err})
}

// ref resolves a reference, returning a field error when the target is
// missing or broken.
func (c *compiler) refErr(field, kind, ns, name string, exists bool) error {
	if err, bad := c.badObjects[kind+" "+key(ns, name)]; bad {
		return v1.FieldErrors{{Field: field, Reason: v1.ReasonInvalid,
			Message: fmt.Sprintf("%s %q is invalid: %v", kind, name, err)}}
	}
	if !exists {
		return v1.FieldErrors{{Field: field, Reason: v1.ReasonNotFound,
			Message: fmt.Sprintf("%s %q not found in namespace %q", kind, name, ns)}}
	}
	return nil
}

func validate(o v1.Object) error {
	if v, ok := o.(v1.Validator); ok {
		if errs := v.Validate(); len(errs) > 0 {
			return errs
		}
	}
	if o.GetMetadata().Name == "" {
		return v1.FieldErrors{v1.Required("metadata.name", "")}
	}
	return nil
}

func (c *compiler) certificate(x *v1.Certificate) error {
	if err := validate(x); err != nil {
		return err
	}
	e := &certEntry{pool: x509.NewCertPool()}
	if !e.pool.AppendCertsFromPEM([]byte(x.Spec.Certificate)) {
		return v1.FieldErrors{v1.Invalid("spec.certificate", "(PEM)", "no certificate found")}
	}
	if x.Spec.PrivateKey != "" {
		if x.Spec.PrivateKey == v1.SecretRedacted {
			return v1.FieldErrors{v1.Invalid("spec.privateKey", v1.SecretRedacted, "the node needs the private key itself")}
		}
		cert, err := tls.X509KeyPair([]byte(x.Spec.Certificate), []byte(x.Spec.PrivateKey))
		if err != nil {
			return v1.FieldErrors{v1.Invalid("spec.privateKey", "(secret)", err.Error())}
		}
		e.cert = &cert
	}
	c.certs[key(x.Metadata.Namespace, x.Metadata.Name)] = e
	c.caPEM[key(x.Metadata.Namespace, x.Metadata.Name)] = x.Spec.Certificate
	c.certPEM[key(x.Metadata.Namespace, x.Metadata.Name)] = x.Spec.Certificate + string(x.Spec.PrivateKey)
	return nil
}

func (c *compiler) healthCheck(x *v1.HealthCheck) error {
	if err := validate(x); err != nil {
		return err
	}
	c.hcs[key(x.Metadata.Namespace, x.Metadata.Name)] = x
	return nil
}

func (c *compiler) pool(x *v1.OriginPool) error {
	if err := validate(x); err != nil {
		return err
	}
	ns, s := x.Metadata.Namespace, &x.Spec
	p := &Pool{
		ID: key(ns, x.Metadata.Name), Namespace: ns, Name: x.Metadata.Name,
		ProxyProtocol:   s.ProxyProtocol,
		HTTP2:           s.Protocol == v1.OriginHTTP2 || s.Protocol == v1.OriginH2C,
		ConnectTimeout:  s.ConnectTimeout.Duration,
		MaxIdleConns:    s.MaxIdleConnsPerEndpoint,
		IdleConnTimeout: s.IdleConnTimeout.Duration,
	}
	if h := s.HashPolicy; h != nil {
		p.HashHeader, p.HashCookie, p.HashSourceIP = h.Header, h.Cookie, h.SourceIP
	}
	if a := s.SessionAffinity; a != nil {
		p.AffinityCookie, p.AffinityTTL = a.Cookie, a.TTL.Duration
	}
	if t := s.TLS; t != nil {
		cfg := &tls.Config{ServerName: t.SNI, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if t.CARef != "" {
			e := c.certs[key(ns, t.CARef)]
			if err := c.refErr("spec.tls.caRef", "Certificate", ns, t.CARef, e != nil); err != nil {
				return err
			}
			cfg.RootCAs = e.pool
		}
		if t.ClientCertRef != "" {
			e := c.certs[key(ns, t.ClientCertRef)]
			if err := c.refErr("spec.tls.clientCertRef", "Certificate", ns, t.ClientCertRef, e != nil); err != nil {
				return err
			}
			if e.cert == nil {
				return v1.FieldErrors{v1.Invalid("spec.tls.clientCertRef", t.ClientCertRef, "the Certificate has no private key")}
			}
			cfg.Certificates = []tls.Certificate{*e.cert}
		}
		p.TLS = cfg
	}
	cfg := lb.PoolConfig{ID: p.ID, Algorithm: lb.Algorithm(s.LoadBalancing), ResolveInterval: s.ResolveInterval.Duration}
	for _, e := range s.Endpoints {
		cfg.Endpoints = append(cfg.Endpoints, lb.EndpointConfig{Address: e.Address, Weight: e.Weight})
	}
	hc := s.HealthCheck
	if s.HealthCheckRef != "" {
		h := c.hcs[key(ns, s.HealthCheckRef)]
		if err := c.refErr("spec.healthCheckRef", "HealthCheck", ns, s.HealthCheckRef, h != nil); err != nil {
			return err
		}
		hc = &h.Spec
	}
	if hc != nil {
		hcc := &lb.HealthCheckConfig{Interval: hc.Interval.Duration, Timeout: hc.Timeout.Duration,
			HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold, Jitter: hc.Jitter.Duration, TLS: p.TLS}
		if h := hc.HTTP; h != nil {
			// Probes speak the pool's protocol: an HTTP/2-only origin is
			// healthy.
			hcc.HTTP = &lb.HTTPCheck{Path: h.Path, Host: h.Host, Method: h.Method, ExpectedStatus: h.ExpectedStatus, HTTP2: p.HTTP2}
		}
		if t := hc.TCP; t != nil {
			hcc.TCP = &lb.TCPCheck{Send: t.Send, Expect: t.Expect}
		}
		cfg.HealthCheck = hcc
	}
	if o := s.OutlierDetection; o != nil {
		cfg.Outlier = &lb.OutlierConfig{Consecutive5xx: o.Consecutive5xx, ConsecutiveConnectFailures: o.ConsecutiveConnectFailures,
			BaseEjectionTime: o.BaseEjectionTime.Duration, MaxEjectionPercent: o.MaxEjectionPercent}
	}
	if b := s.CircuitBreaker; b != nil {
		cfg.Breaker = &lb.BreakerConfig{MaxConnections: b.MaxConnections, MaxPendingRequests: b.MaxPendingRequests, MaxRequests: b.MaxRequests}
		p.MaxConnsPerBreaker = b.MaxConnections
	}
	p.LB = cfg
	tk := sha256.New()
	fmt.Fprintf(tk, "%d|%s|%s|%d|%v", p.ProxyProtocol, p.ConnectTimeout, p.IdleConnTimeout, p.MaxIdleConns, p.HTTP2)
	if t := s.TLS; t != nil {
		fmt.Fprintf(tk, "|tls|%s|%v", t.SNI, t.InsecureSkipVerify)
		if e := c.certs[key(ns, t.CARef)]; t.CARef != "" && e != nil {
			fmt.Fprintf(tk, "|ca|%s", c.certPEM[key(ns, t.CARef)])
		}
		if t.ClientCertRef != "" {
			fmt.Fprintf(tk, "|client|%s", c.certPEM[key(ns, t.ClientCertRef)])
		}
	}
	p.TransportKey = hex.EncodeToString(tk.Sum(nil))
	c.t.Pools[p.ID] = p
	return nil
}

func (c *compiler) poolRef(field, ns, name string) (*Pool, error) {
	p := c.t.Pools[key(ns, name)]
	return p, c.refErr(field, "OriginPool", ns, name, p != nil)
}

func listenerKey(addr string, port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }

func (c *compiler) httpLB(x *v1.HTTPLoadBalancer) error {
	if err := validate(x); err != nil {
		return err
	}
	ns, s := x.Metadata.Namespace, &x.Spec
	id := key(ns, x.Metadata.Name)
	vh := &VHost{ID: id, Namespace: ns, Name: x.Metadata.Name, AccessLog: s.AccessLog, Spec: s}
	if s.Timeouts != nil {
		vh.Timeouts = Timeouts{RequestHeader: s.Timeouts.RequestHeader.Duration, RequestBody: s.Timeouts.RequestBody.Duration, Idle: s.Timeouts.Idle.Duration}
	}
	var errs v1.FieldErrors
	addErr := func(err error) {
		var fe v1.FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
		} else if err != nil {
			errs = append(errs, v1.FieldError{Field: "spec", Reason: v1.ReasonInvalid, Message: err.Error()})
		}
	}
	for _, tp := range s.TrustedProxies {
		if p, err := netip.ParsePrefix(tp); err == nil {
			vh.TrustedProxies = append(vh.TrustedProxies, p.Masked())
		} else if a, err := netip.ParseAddr(tp); err == nil {
			vh.TrustedProxies = append(vh.TrustedProxies, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	var def *Pool
	if s.DefaultPool != "" {
		p, err := c.poolRef("spec.defaultPool", ns, s.DefaultPool)
		addErr(err)
		def = p
		vh.Default = &Route{Name: id + "#default", Pool: p}
	}
	for i := range s.Routes {
		rt, err := c.route(ns, id, i, &s.Routes[i], def)
		addErr(err)
		vh.Routes = append(vh.Routes, rt)
	}
	clientCerts, err := c.lbSecurity(x, vh)
	addErr(err)
	// Listener contributions, checked for conflicts before anything is
	// merged so that a rejected load balancer leaves no trace.
	type contrib struct {
		l      *HTTPListener
		isNew  bool
		def    *tls.Certificate
		extras []*tls.Certificate
	}
	var contribs []contrib
	for i, ls := range s.Listeners {
		f := fmt.Sprintf("spec.listeners[%d]", i)
		k := listenerKey(ls.Address, ls.Port)
		if _, tcp := c.t.TCP[k]; tcp {
			addErr(v1.FieldErrors{{Field: f + ".port", Reason: v1.ReasonDuplicate, Message: fmt.Sprintf("%s is already a TCP listener of %s", k, c.owner[k])}})
			continue
		}
		var cb contrib
		if t := ls.TLS; t != nil {
			refs := append([]string(nil), t.CertificateRefs...)
			fields := make([]string, 0, len(refs)+1)
			for j := range refs {
				fields = append(fields, fmt.Sprintf("%s.tls.certificateRefs[%d]", f, j))
			}
			if t.CertificateRef != "" {
				refs = append([]string{t.CertificateRef}, refs...)
				fields = append([]string{f + ".tls.certificateRef"}, fields...)
			}
			for j, r := range refs {
				e := c.certs[key(ns, r)]
				if err := c.refErr(fields[j], "Certificate", ns, r, e != nil); err != nil {
					addErr(err)
					continue
				}
				if e.cert == nil {
					addErr(v1.FieldErrors{v1.Invalid(fields[j], r, "the Certificate has no private key")})
					continue
				}
				if j == 0 {
					cb.def = e.cert
				} else {
					cb.extras = append(cb.extras, e.cert)
				}
			}
		}
		l := c.t.HTTP[k]
		if l == nil {
			l = &HTTPListener{Key: k, Address: ls.Address, Port: ls.Port, H2C: ls.H2C, ProxyProtocol: ls.ProxyProtocol,
				MaxConnections: s.MaxConnections, exact: map[string]*VHost{}}
			l.Timeouts = vh.Timeouts
			if ls.TLS != nil {
				l.TLS = &Certs{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
				l.HTTP2 = ls.HTTP2 == nil || *ls.HTTP2
				l.MinTLSVersion = tls.VersionTLS12
				if ls.TLS.MinVersion == "1.3" {
					l.MinTLSVersion = tls.VersionTLS13
				}
			}
			cb.isNew = true
		} else {
			if (l.TLS != nil) != (ls.TLS != nil) || l.ProxyProtocol != ls.ProxyProtocol {
				addErr(v1.FieldErrors{{Field: f, Reason: v1.ReasonInvalid,
					Message: fmt.Sprintf("listener %s is shared with %s and must have the same tls and proxyProtocol settings", k, c.owner[k])}})
				continue
			}
		}
		cb.l = l
		for j, d := range s.Domains {
			d = strings.TrimSuffix(strings.ToLower(d), ".")
			var other *VHost
			switch {
			case d == "*":
				other = l.any
			case strings.HasPrefix(d, "*."):
				for _, w := range l.wildcard {
					if w.suffix == d[1:] {
						other = w.vh
					}
				}
			default:
				other = l.exact[d]
			}
			if other != nil {
				addErr(v1.FieldErrors{{Field: fmt.Sprintf("spec.domains[%d]", j), Reason: v1.ReasonDuplicate,
					Message: fmt.Sprintf("domain %q on listener %s is already served by HTTPLoadBalancer %s", d, k, other.ID)}})
			}
		}
		contribs = append(contribs, cb)
	}
	if len(errs) > 0 {
		return errs
	}
	for _, cb := range contribs {
		l := cb.l
		l.ClientCertificates = l.ClientCertificates || clientCerts && l.TLS != nil
		if cb.isNew {
			c.t.HTTP[l.Key] = l
			c.owner[l.Key] = "HTTPLoadBalancer " + id
		} else {
			// A shared listener: the strictest timeouts before the Host
			// is known, whatever the order the load balancers came in.
			l.Timeouts = l.Timeouts.Strictest(vh.Timeouts)
		}
		for _, d := range s.Domains {
			d = strings.TrimSuffix(strings.ToLower(d), ".")
			switch {
			case d == "*":
				l.any = vh
			case strings.HasPrefix(d, "*."):
				l.wildcard = append(l.wildcard, wildcardHost{suffix: d[1:], vh: vh})
			default:
				l.exact[d] = vh
			}
		}
		if l.TLS != nil {
			if cb.def != nil {
				l.TLS.add(cb.def, l.TLS.def == nil)
			}
			for _, e := range cb.extras {
				l.TLS.add(e, l.TLS.def == nil)
			}
		}
	}
	return nil
}

func (c *compiler) route(ns, id string, i int, r *v1.HTTPRoute, def *Pool) (*Route, error) {
	f := fmt.Sprintf("spec.routes[%d]", i)
	rt := &Route{Name: id + "#" + strconv.Itoa(i), Methods: r.Match.Methods,
		PrefixRewrite: r.PrefixRewrite, HostRewrite: r.HostRewrite,
		RequestHeaders: r.RequestHeaders, ResponseHeaders: r.ResponseHeaders,
		Timeout: r.Timeout.Duration, Redirect: r.Redirect, Direct: r.DirectResponse, CORS: r.CORS}
	var errs v1.FieldErrors
	add := func(err error) {
		var fe v1.FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
		}
	}
	switch m := r.Match; {
	case m.Path != "":
		rt.PathKind, rt.PathValue = PathExact, m.Path
	case m.PathPrefix != "":
		rt.PathKind, rt.PathValue = PathPrefix, m.PathPrefix
	case m.PathRegex != "":
		re, err := regexp.Compile("^(?:" + m.PathRegex + ")$")
		if err != nil {
			add(v1.FieldErrors{v1.Invalid(f+".match.pathRegex", m.PathRegex, err.Error())})
		}
		rt.PathKind, rt.PathRe = PathRegex, re
	}
	for j, h := range r.Match.Headers {
		vm, err := valueMatch(fmt.Sprintf("%s.match.headers[%d]", f, j), h.Name, h.Exact, h.Prefix, h.Regex, h.Present, h.Invert)
		add(err)
		rt.Headers = append(rt.Headers, vm)
	}
	for j, q := range r.Match.QueryParams {
		vm, err := valueMatch(fmt.Sprintf("%s.match.queryParams[%d]", f, j), q.Name, q.Exact, q.Prefix, q.Regex, q.Present, q.Invert)
		add(err)
		rt.Query = append(rt.Query, vm)
	}
	if r.Pool != "" {
		p, err := c.poolRef(f+".pool", ns, r.Pool)
		add(err)
		rt.Pool = p
	} else if r.Redirect == nil && r.DirectResponse == nil {
		rt.Pool = def
	}
	if m := r.Mirror; m != nil {
		p, err := c.poolRef(f+".mirror.pool", ns, m.Pool)
		add(err)
		rt.Mirror = &Mirror{Pool: p, Percent: m.Percent}
	}
	if rp := r.Retries; rp != nil {
		rr := &Retry{Attempts: rp.Attempts, PerTryTimeout: rp.PerTryTimeout.Duration, NonIdempotent: rp.RetryNonIdempotent}
		if b := rp.Budget; b != nil {
			rr.BudgetPercent, rr.MinPerSecond = b.Percent, b.MinRetriesPerSecond
		}
		for _, on := range rp.On {
			switch on {
			case v1.RetryOnConnectFailure:
				rr.ConnectFailure = true
			case v1.RetryOnReset:
				rr.Reset = true
			case v1.RetryOn5xx:
				rr.Any5xx = true
			case v1.RetryOnGatewayError:
				rr.GatewayError = true
			default:
				if n, err := strconv.Atoi(string(on)); err == nil {
					rr.Statuses = append(rr.Statuses, n)
				}
			}
		}
		rt.Retry = rr
	}
	if len(errs) > 0 {
		return rt, errs
	}
	return rt, nil
}

func valueMatch(f, name, exact, prefix, re string, present, invert bool) (ValueMatch, error) {
	vm := ValueMatch{Name: name, Exact: exact, Prefix: prefix, Present: present, Invert: invert}
	if re != "" {
		r, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return vm, v1.FieldErrors{v1.Invalid(f+".regex", re, err.Error())}
		}
		vm.Regex = r
	}
	return vm, nil
}

func (c *compiler) tcpLB(x *v1.TCPLoadBalancer) error {
	if err := validate(x); err != nil {
		return err
	}
	ns, s := x.Metadata.Namespace, &x.Spec
	id := key(ns, x.Metadata.Name)
	var errs v1.FieldErrors
	add := func(err error) {
		var fe v1.FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
		}
	}
	var def *Pool
	if s.Pool != "" {
		p, err := c.poolRef("spec.pool", ns, s.Pool)
		add(err)
		def = p
	}
	var routes []TCPRoute
	for i, r := range s.Routes {
		p, err := c.poolRef(fmt.Sprintf("spec.routes[%d].pool", i), ns, r.Pool)
		add(err)
		tr := TCPRoute{Pool: p}
		for _, n := range r.SNI {
			n = strings.ToLower(n)
			if strings.HasPrefix(n, "*.") {
				tr.Suffixes = append(tr.Suffixes, n[1:])
			} else {
				tr.Exact = append(tr.Exact, n)
			}
		}
		routes = append(routes, tr)
	}
	var ls []*TCPListener
	for i, l := range s.Listeners {
		k := listenerKey(l.Address, l.Port)
		if owner, taken := c.owner[k]; taken {
			add(v1.FieldErrors{{Field: fmt.Sprintf("spec.listeners[%d].port", i), Reason: v1.ReasonDuplicate,
				Message: fmt.Sprintf("listener %s is already used by %s", k, owner)}})
			continue
		}
		ls = append(ls, &TCPListener{Key: k, Address: l.Address, Port: l.Port, ID: id, ProxyProtocol: l.ProxyProtocol,
			MaxConnections: s.MaxConnections, IdleTimeout: s.IdleTimeout.Duration, Routes: routes, Default: def})
	}
	if len(errs) > 0 {
		return errs
	}
	for _, l := range ls {
		c.t.TCP[l.Key] = l
		c.owner[l.Key] = "TCPLoadBalancer " + id
	}
	return nil
}

// sortByName orders objects oldest first (when the console set creation
// times), then by namespace and name: on a conflict the older object wins.
func sortByName[T v1.Object](xs []T) {
	sort.SliceStable(xs, func(i, j int) bool {
		a, b := xs[i].GetMetadata(), xs[j].GetMetadata()
		if a.CreationTimestamp != nil && b.CreationTimestamp != nil && !a.CreationTimestamp.Equal(*b.CreationTimestamp) {
			return a.CreationTimestamp.Before(*b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

// deepCopy copies an object through JSON so that defaulting never touches
// the caller's value.
func deepCopy(o v1.Object) v1.Object {
	b, err := json.Marshal(o)
	if err != nil {
		return o
	}
	n := reflect.New(reflect.TypeOf(o).Elem()).Interface().(v1.Object)
	if err := json.Unmarshal(b, n); err != nil {
		return o
	}
	return n
}

func redacted(o v1.Object) v1.Object {
	cp := deepCopy(o)
	if s, ok := cp.(v1.SecretHolder); ok {
		for _, f := range s.SecretFields() {
			if *f.Value != "" {
				*f.Value = v1.SecretRedacted
			}
		}
	}
	return cp
}
