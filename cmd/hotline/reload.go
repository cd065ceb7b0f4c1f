package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/hotline-project/hotline/admin"
)

// reloadCmd asks a running server to load its configuration file again (as SIGHUP does),
// through the admin API, and reports whether it took it.
func reloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://127.0.0.1:9095", "the server's HTTP `URL` (admin API; token in $"+admin.TokenEnv+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reload: unexpected argument %q", fs.Arg(0))
	}
	if _, err := adminRequest(ctx, http.MethodPost, *server, "/admin/v1/reload", http.StatusOK); err != nil {
		return errors.Join(errors.New("reload refused; the running configuration stays in force"), err)
	}
	_, err := fmt.Fprintf(stdout, "%s: configuration reloaded\n", *server)
	return err
}
