package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// objectCall is a command's call about one object named KIND NAME (or
// KIND/NAME): a context that ends on Ctrl-C, the client, and the object's
// kind, namespace and name.
type objectCall struct {
	ctx     context.Context
	c       *client.Client
	ki      v1.KindInfo
	kindArg string // the kind as typed
	ns      string // "" unless the kind is namespaced
	name    string
}

// oneObject reads the KIND NAME (or KIND/NAME) arguments of the command verb
// (named in the errors), resolves the kind and connects. The caller calls
// the returned cancel when done (it is nil with an error).
func (f *factory) oneObject(cmd *cobra.Command, verb string, args []string) (*objectCall, context.CancelFunc, error) {
	kindArg, names, err := splitKindName(args)
	if err != nil {
		return nil, nil, err
	}
	if len(names) != 1 {
		return nil, nil, fmt.Errorf("%s takes one KIND and one NAME", verb)
	}
	ki, err := resolveKind(kindArg)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := signalContext(cmd)
	c, cctx, err := f.client()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return &objectCall{ctx: ctx, c: c, ki: ki, kindArg: kindArg, ns: f.nsFor(ki, cctx), name: names[0]}, cancel, nil
}
