package waf

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Rule ids Meridian uses for the rules it generates (the 9,5xx,xxx range is
// free in CRS's numbering scheme).
const (
	idBodyProcessor = 9_500_000 // + n
	idExclusion     = 9_501_000 // + n
)

// TestSettings are the settings the CRS regression tests prescribe.
type TestSettings struct {
	// Enabled adds them.
	Enabled bool
}

// Directives renders the SecLang configuration of an AppFirewall spec
// (defaults are applied to a copy). The result is deterministic: equal
// specs give equal text, which is what the instance cache is keyed by.
func Directives(spec v1.AppFirewallSpec) (string, error) {
	return directives(spec, false)
}

func directives(spec v1.AppFirewallSpec, crsTests bool) (string, error) {
	af := v1.AppFirewall{Spec: spec}
	af.Spec.Exclusions = slices.Clone(spec.Exclusions)
	af.Spec.RequestBody.Processors = slices.Clone(spec.RequestBody.Processors)
	af.Default()
	if errs := af.Validate(); len(errs) > 0 {
		return "", errs
	}
	s := af.Spec
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	engine := "On"
	if s.Mode == v1.AppFirewallMonitor {
		engine = "DetectionOnly"
	}
	w("SecRuleEngine %s", engine)
	rb := s.RequestBody
	if rb.Disabled {
		w("SecRequestBodyAccess Off")
	} else {
		w("SecRequestBodyAccess On")
	}
	w("SecRequestBodyLimit %d", rb.Limit)
	w("SecRequestBodyInMemoryLimit %d", rb.Limit)
	if rb.OnLimit == v1.WAFOnLimitProcessPartial {
		w("SecRequestBodyLimitAction ProcessPartial")
	} else {
		w("SecRequestBodyLimitAction Reject")
	}
	w("SecRequestBodyJsonDepthLimit %d", rb.JSONDepthLimit)
	ri := s.ResponseInspection
	if ri.Enabled {
		w("SecResponseBodyAccess On")
		w("SecResponseBodyLimit %d", ri.Limit)
		w("SecResponseBodyLimitAction ProcessPartial")
		w("SecResponseBodyMimeType %s", strings.Join(ri.MimeTypes, " "))
	} else {
		w("SecResponseBodyAccess Off")
	}
	// Meridian reports the matched rules (Tx.Close), never Coraza's audit
	// log, which Coraza would otherwise build for every transaction.
	w("SecAuditEngine Off")
	// Body processors: Coraza picks urlencoded and multipart from the
	// content type by itself; JSON and XML are switched on by rules, and a
	// processor that is not wanted is replaced by RAW.
	has := func(p string) bool { return slices.Contains(rb.Processors, p) }
	n := 0
	proc := func(re, processor string) {
		w(`SecRule REQUEST_HEADERS:Content-Type "@rx %s" "id:%d,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=%s"`,
			re, idBodyProcessor+n, processor)
		n++
	}
	if has(v1.WAFBodyXML) {
		proc(`^(?:application(?:/soap\+|/)|text/)xml`, "XML")
	}
	if has(v1.WAFBodyJSON) {
		proc(`^application/json`, "JSON")
		proc(`^application/[a-z0-9.-]+[+]json`, "JSON")
	}
	if !has(v1.WAFBodyURLEncoded) {
		proc(`^application/x-www-form-urlencoded`, "RAW")
	}
	if !has(v1.WAFBodyMultipart) {
		proc(`^multipart/`, "RAW")
	}
	w(`SecRule REQBODY_ERROR "!@eq 0" "id:%d,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%%{reqbody_error_msg}',severity:2"`, idBodyProcessor+90)
	w(`SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:%d,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"`, idBodyProcessor+91)

	w("Include @crs-setup.conf.example")
	w(`SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"`, s.ParanoiaLevel)
	w(`SecAction "id:900001,phase:1,pass,t:none,nolog,setvar:tx.detection_paranoia_level=%d"`, s.DetectionParanoiaLevel)
	w(`SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d"`,
		s.AnomalyThreshold.Inbound, s.AnomalyThreshold.Outbound)
	if crsTests {
		// What the CRS project's test setup sets (its tests/ README).
		w(`SecAction "id:900005,phase:1,pass,t:none,nolog,ctl:ruleRemoveById=910000,setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"`)
		w(`SecRule REQUEST_HEADERS:X-CRS-Test "@rx ^.*$" "id:999999,phase:1,pass,t:none,log,msg:'X-CRS-Test %%{MATCHED_VAR}',ctl:ruleRemoveById=1-999999"`)
	}

	// Conditional exclusions run before the CRS rules (runtime ctl);
	// unconditional ones are applied to the loaded rules after them.
	var after []string
	for i, e := range s.Exclusions {
		f := fmt.Sprintf("spec.exclusions[%d]", i)
		if bad := unsafeSecLang(e.Path); bad != "" {
			return "", fmt.Errorf("%s.path: must not contain %s", f, bad)
		}
		if bad := unsafeSecLang(e.ArgName); bad != "" || strings.ContainsAny(e.ArgName, ";|:") {
			return "", fmt.Errorf("%s.argName: must not contain quotes, backslashes, commas, semicolons, colons or pipes", f)
		}
		var ctls []string
		for _, id := range e.RuleIDs {
			if e.ArgName != "" {
				ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveTargetById=%d;ARGS:%s", id, e.ArgName))
			} else {
				ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveById=%d", id))
			}
		}
		for _, tag := range e.Tags {
			if e.ArgName != "" {
				ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveTargetByTag=%s;ARGS:%s", tag, e.ArgName))
			} else {
				ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveByTag=%s", tag))
			}
		}
		id := idExclusion + i*2
		switch {
		case e.Path == "" && e.Host == "":
			for _, rid := range e.RuleIDs {
				if e.ArgName != "" {
					after = append(after, fmt.Sprintf(`SecRuleUpdateTargetById %d "!ARGS:%s"`, rid, e.ArgName))
				} else {
					after = append(after, fmt.Sprintf("SecRuleRemoveById %d", rid))
				}
			}
			for _, tag := range e.Tags {
				if e.ArgName != "" {
					after = append(after, fmt.Sprintf(`SecRuleUpdateTargetByTag %s "!ARGS:%s"`, tag, e.ArgName))
				} else {
					after = append(after, fmt.Sprintf(`SecRuleRemoveByTag %s`, tag))
				}
			}
		case e.Path != "" && e.Host != "":
			w(`SecRule REQUEST_FILENAME "@beginsWith %s" "id:%d,phase:1,pass,t:none,nolog,chain"`, e.Path, id)
			w(`SecRule REQUEST_HEADERS:Host "@rx %s" "t:none,t:lowercase,%s"`, hostRegex(e.Host), strings.Join(ctls, ","))
		case e.Path != "":
			w(`SecRule REQUEST_FILENAME "@beginsWith %s" "id:%d,phase:1,pass,t:none,nolog,%s"`, e.Path, id, strings.Join(ctls, ","))
		default:
			w(`SecRule REQUEST_HEADERS:Host "@rx %s" "id:%d,phase:1,pass,t:none,t:lowercase,nolog,%s"`, hostRegex(e.Host), id, strings.Join(ctls, ","))
		}
	}
	if strings.TrimSpace(s.CustomRules) != "" {
		b.WriteString(s.CustomRules)
		if !strings.HasSuffix(s.CustomRules, "\n") {
			b.WriteByte('\n')
		}
	}
	w("Include @owasp_crs/*.conf")
	for _, a := range after {
		w("%s", a)
	}
	return b.String(), nil
}

// hostRegex matches a Host header (with an optional port) against an exact
// name or a "*.suffix" pattern, case-insensitively (the header is lowered).
func hostRegex(h string) string {
	h = strings.ToLower(h)
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return `^[^:/]+\.` + regexp.QuoteMeta(rest) + `(?::[0-9]+)?$`
	}
	return `^` + regexp.QuoteMeta(h) + `(?::[0-9]+)?$`
}

// unsafeSecLang names what in s could break out of a quoted SecLang
// argument or action list ("" when nothing).
func unsafeSecLang(s string) string {
	if i := strings.IndexAny(s, "\"'\\,"); i >= 0 {
		return strconv.Quote(s[i : i+1])
	}
	if strings.Contains(s, "%{") {
		return `"%{"`
	}
	return ""
}
