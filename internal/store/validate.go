package store

import "fmt"

// Validate checks t for mistakes both backends reject the same way: empty
// keys, unknown op types and a key written twice in one transaction.
func (t Txn) Validate() error {
	for _, c := range t.Compares {
		if c.Key == "" {
			return fmt.Errorf("store: compare with an empty key")
		}
		if c.ModRevision < 0 {
			return fmt.Errorf("store: compare on %q with negative revision %d", c.Key, c.ModRevision)
		}
	}
	seen := make(map[string]struct{}, len(t.Ops))
	for _, op := range t.Ops {
		if op.Key == "" {
			return fmt.Errorf("store: op with an empty key")
		}
		if op.Type != OpPut && op.Type != OpDelete {
			return fmt.Errorf("store: op on %q has unknown type %d", op.Key, op.Type)
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("store: key %q written twice in one transaction", op.Key)
		}
		seen[op.Key] = struct{}{}
	}
	return nil
}
