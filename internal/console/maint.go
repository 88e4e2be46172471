package console

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/internal/cli"
	"github.com/meridian-platform/meridian/internal/pki"
)

func newBackupCommand(out io.Writer) *cobra.Command {
	var o Options
	var file string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Save everything a console needs (objects, history, audit, CA and data keys) to a file",
		Long: `Save every key of the console's store, read at one revision, to a file.

The CA key and the data keys are in the backup wrapped by the master key:
keep the master key (DATA_DIR/master.key for the embedded default) apart from
the backup, and give it again on restore. With the embedded store, stop the
console first (the bbolt file is locked while it runs); with etcd, back up
while the consoles run.`,
		Example: `  meridian console backup --data-dir ./.meridian -o meridian.backup
  meridian console backup --store etcd --etcd-endpoints http://127.0.0.1:2379 -o meridian.backup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("--output is required")
			}
			ctx, cancel := runCtx(cmd)
			defer cancel()
			if err := o.setDefaults(); err != nil {
				return err
			}
			st, err := openStore(ctx, o)
			if err != nil {
				return err
			}
			defer st.Close()
			f, err := os.OpenFile(file+".partial", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			n, rev, err := Backup(ctx, st, f)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(file + ".partial")
				return err
			}
			if err := os.Rename(file+".partial", file); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(out, "backed up %d keys at revision %d to %s\n", n, rev, file)
			return nil
		},
	}
	bindOptions(cmd, &o, "./.meridian")
	cmd.Flags().StringVarP(&file, "output", "o", "", "backup file to write")
	return cmd
}

func newRestoreCommand(out io.Writer) *cobra.Command {
	var o Options
	var file string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup into an empty store",
		Long: `Restore a backup made by 'meridian console backup' into an empty store (a new
data directory, or an unused etcd prefix). The whole file is checked (format,
count, checksum) before anything is written. Start the console on the
restored store with the master key the backup was made under.`,
		Example: `  meridian console restore --data-dir ./restored -i meridian.backup
  cp ./.meridian/master.key ./restored/master.key
  meridian console --data-dir ./restored`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("--input is required")
			}
			ctx, cancel := runCtx(cmd)
			defer cancel()
			if err := o.setDefaults(); err != nil {
				return err
			}
			f, err := os.Open(file)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			st, err := openStore(ctx, o)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := Restore(ctx, st, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "restored %d keys from %s\n", n, file)
			return nil
		},
	}
	bindOptions(cmd, &o, "./.meridian")
	cmd.Flags().StringVarP(&file, "input", "i", "", "backup file to read")
	return cmd
}

func newRotateKeyCommand(out io.Writer) *cobra.Command {
	var o Options
	var newMaster, cliConfig string
	var online bool
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Start a new data key, and optionally re-wrap every data key under a new master key",
		Long: `Rotate the keys that protect secrets at rest.

Without flags, a new data key becomes the primary: new secrets are sealed with
it, and older ciphertexts stay readable through their key id. Consoles sharing
the store pick the new key up on their own, so with etcd this runs while they
serve. With --new-master-key-file every data key (and so the CA key) is
re-wrapped under the new master key; start the consoles with that key next.
With the embedded store the file is locked while the console runs: rotate the
data key through the running console with --online instead.`,
		Example: `  meridian console rotate-key --online            # the console of the current CLI context, no downtime
  meridian console rotate-key --data-dir ./.meridian   # console stopped
  meridian console rotate-key --store etcd --etcd-endpoints http://127.0.0.1:2379 \
      --master-key-file old.key --new-master-key-file new.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := runCtx(cmd)
			defer cancel()
			if online {
				if newMaster != "" {
					return fmt.Errorf("--new-master-key-file needs the store itself: stop the console (bolt) or run against etcd, without --online")
				}
				id, err := rotateOnline(ctx, cliConfig)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "new primary data key %s (rotated by the running console)\n", id)
				return nil
			}
			if err := o.setDefaults(); err != nil {
				return err
			}
			master, masterID, err := loadMasterKey(o)
			if err != nil {
				return err
			}
			st, err := openStore(ctx, o)
			if err != nil {
				return err
			}
			defer st.Close()
			kr, err := pki.NewKeyring(ctx, st, master, masterID)
			if err != nil {
				return fmt.Errorf("loading data keys: %w", err)
			}
			id, err := kr.Rotate(ctx)
			if err != nil {
				return fmt.Errorf("rotating data key: %w", err)
			}
			fmt.Fprintf(out, "new primary data key %s\n", id)
			if newMaster != "" {
				key, _, err := pki.LoadMasterKey(newMaster, "")
				if err != nil {
					return err
				}
				mid, err := kr.RewrapMaster(ctx, key)
				if err != nil {
					return fmt.Errorf("re-wrapping data keys: %w", err)
				}
				fmt.Fprintf(out, "every data key is now wrapped by master key %s; start the consoles with %s\n", mid, newMaster)
			}
			return nil
		},
	}
	bindOptions(cmd, &o, "./.meridian")
	cmd.Flags().StringVar(&newMaster, "new-master-key-file", "", "re-wrap every data key under the master key in this file")
	cmd.Flags().BoolVar(&online, "online", false, "ask the running console of the current CLI context to rotate (system admin token), without stopping it")
	cmd.Flags().StringVar(&cliConfig, "cli-config", "", "CLI config file for --online (default: $MERIDIAN_CONFIG or the user config dir)")
	return cmd
}

// rotateOnline asks the console of the current CLI context to rotate its
// data key. The request acts in the system tenant (no X-Meridian-Tenant).
func rotateOnline(ctx context.Context, cliConfig string) (string, error) {
	path := cliConfig
	if path == "" {
		p, err := cli.DefaultConfigPath()
		if err != nil {
			return "", err
		}
		path = p
	}
	cfg, err := cli.LoadConfig(path)
	if err != nil {
		return "", err
	}
	cur, ok := cfg.Current()
	if !ok {
		return "", fmt.Errorf("--online: no current context in %s (run meridian login)", path)
	}
	cur.ActAsTenant = false
	cl, err := cli.NewClient(cur)
	if err != nil {
		return "", err
	}
	id, err := cl.RotateDataKey(ctx)
	if err != nil {
		return "", fmt.Errorf("rotating the data key on %s: %w", cur.Server, err)
	}
	return id, nil
}
