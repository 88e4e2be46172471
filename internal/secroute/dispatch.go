package secroute

import (
	"github.com/meridian-platform/meridian/internal/dataplane"
)

// dispatch runs, per exchange, the stages of the exchange's route profile.
// Request callbacks run in order, response callbacks in reverse order (as
// the pipeline does); the first stage that responds stops the rest.
type dispatch struct {
	name            string
	reqHeaders      [][]dataplane.RequestHeadersFilter
	reqBody         [][]dataplane.RequestBodyFilter
	respHeaders     [][]dataplane.ResponseHeadersFilter
	respBody        [][]dataplane.ResponseBodyFilter
	done            [][]dataplane.DoneHook
	bufReq, bufResp int
	// loop says every stage the dispatcher may run is loop-servable
	// (dataplane.LoopStage), so that it is itself.
	loop bool
}

// The pipeline calls only the callbacks a stage implements and buffers
// bodies for those that ask, so the dispatcher comes with and without body
// callbacks.
type (
	reqBodyDispatch  struct{ *dispatch }
	respBodyDispatch struct{ *dispatch }
	bothDispatch     struct{ *dispatch }
)

var (
	_ dataplane.RequestHeadersFilter  = (*dispatch)(nil)
	_ dataplane.ResponseHeadersFilter = (*dispatch)(nil)
	_ dataplane.DoneHook              = (*dispatch)(nil)
	_ dataplane.LoopStage             = (*dispatch)(nil)
	_ dataplane.RequestBodyFilter     = reqBodyDispatch{}
	_ dataplane.ResponseBodyFilter    = respBodyDispatch{}
	_ dataplane.RequestBodyFilter     = bothDispatch{}
	_ dataplane.ResponseBodyFilter    = bothDispatch{}
)

func newDispatch(name string, per [][]dataplane.Stage) dataplane.Stage {
	n := len(per)
	d := &dispatch{name: name, reqHeaders: make([][]dataplane.RequestHeadersFilter, n),
		reqBody: make([][]dataplane.RequestBodyFilter, n), respHeaders: make([][]dataplane.ResponseHeadersFilter, n),
		respBody: make([][]dataplane.ResponseBodyFilter, n), done: make([][]dataplane.DoneHook, n)}
	anyReqBody, anyRespBody := false, false
	d.loop = true
	for i, stages := range per {
		for _, s := range stages {
			if ls, ok := s.(dataplane.LoopStage); !ok || !ls.LoopServable() {
				d.loop = false
			}
			if f, ok := s.(dataplane.RequestHeadersFilter); ok {
				d.reqHeaders[i] = append(d.reqHeaders[i], f)
			}
			if f, ok := s.(dataplane.RequestBodyFilter); ok {
				d.reqBody[i] = append(d.reqBody[i], f)
				d.bufReq = max(d.bufReq, f.BufferRequestBody())
				anyReqBody = true
			}
			if f, ok := s.(dataplane.ResponseHeadersFilter); ok {
				d.respHeaders[i] = append(d.respHeaders[i], f)
			}
			if f, ok := s.(dataplane.ResponseBodyFilter); ok {
				d.respBody[i] = append(d.respBody[i], f)
				d.bufResp = max(d.bufResp, f.BufferResponseBody())
				anyRespBody = true
			}
			if f, ok := s.(dataplane.DoneHook); ok {
				d.done[i] = append(d.done[i], f)
			}
		}
	}
	switch {
	case anyReqBody && anyRespBody:
		return bothDispatch{d}
	case anyReqBody:
		return reqBodyDispatch{d}
	case anyRespBody:
		return respBodyDispatch{d}
	}
	return d
}

// Name implements dataplane.Stage.
func (d *dispatch) Name() string { return d.name }

// LoopServable implements dataplane.LoopStage: the dispatcher may run on
// the event loops exactly when each stage of each profile may (it only
// picks the route's stages and calls theirs; the loop sets
// Exchange.Route before the request-head callbacks).
func (d *dispatch) LoopServable() bool { return d.loop }

// profile is the index of the exchange's security profile.
func (d *dispatch) profile(x *dataplane.Exchange) int {
	if x.Route != nil && x.Route.Security != nil {
		if i := x.Route.Security.Index; i >= 0 && i < len(d.reqHeaders) {
			return i
		}
	}
	return 0
}

func (d *dispatch) OnRequestHeaders(x *dataplane.Exchange) dataplane.Action {
	for _, f := range d.reqHeaders[d.profile(x)] {
		if f.OnRequestHeaders(x) == dataplane.Respond {
			return dataplane.Respond
		}
	}
	return dataplane.Continue
}

func (d *dispatch) OnResponseHeaders(x *dataplane.Exchange) dataplane.Action {
	fs := d.respHeaders[d.profile(x)]
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].OnResponseHeaders(x) == dataplane.Respond {
			return dataplane.Respond
		}
	}
	return dataplane.Continue
}

func (d *dispatch) OnDone(x *dataplane.Exchange) {
	for _, f := range d.done[d.profile(x)] {
		f.OnDone(x)
	}
}

func (d *dispatch) onRequestBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	for _, f := range d.reqBody[d.profile(x)] {
		if f.OnRequestBody(x, chunk, end) == dataplane.Respond {
			return dataplane.Respond
		}
	}
	return dataplane.Continue
}

func (d *dispatch) onResponseBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	fs := d.respBody[d.profile(x)]
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].OnResponseBody(x, chunk, end) == dataplane.Respond {
			return dataplane.Respond
		}
	}
	return dataplane.Continue
}

func (d reqBodyDispatch) OnRequestBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return d.onRequestBody(x, chunk, end)
}
func (d reqBodyDispatch) BufferRequestBody() int { return d.bufReq }

func (d respBodyDispatch) OnResponseBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return d.onResponseBody(x, chunk, end)
}
func (d respBodyDispatch) BufferResponseBody() int { return d.bufResp }

func (d bothDispatch) OnRequestBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return d.onRequestBody(x, chunk, end)
}
func (d bothDispatch) BufferRequestBody() int { return d.bufReq }
func (d bothDispatch) OnResponseBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return d.onResponseBody(x, chunk, end)
}
func (d bothDispatch) BufferResponseBody() int { return d.bufResp }
