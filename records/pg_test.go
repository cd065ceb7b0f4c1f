package records

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" for database/sql
)

// The PostgreSQL tests run against a throwaway cluster that the first of them starts
// (initdb and pg_ctl from Debian's postgresql package) in a temporary directory, on a
// loopback port picked by the kernel, and TestMain stops. Each test gets a database of its
// own. Without the binaries the tests are skipped, unless HOTLINE_REQUIRE_TOOLS=1 (as CI
// sets) makes that a failure.

var pg struct {
	once sync.Once
	dsn  func(db string) string // a DSN for database db
	err  error
	skip string
	stop func()
	ctl  func(action string) error // pg_ctl start or stop, on the same port
	n    atomic.Int32
}

func TestMain(m *testing.M) {
	if crashHelper() {
		return
	}
	code := m.Run()
	if pg.stop != nil {
		pg.stop()
	}
	os.Exit(code)
}

// postgresDSN returns the DSN of a new, empty database in the test cluster.
func postgresDSN(t *testing.T) string {
	t.Helper()
	pg.once.Do(startPostgres)
	if pg.skip != "" {
		if os.Getenv("HOTLINE_REQUIRE_TOOLS") == "1" {
			t.Fatalf("HOTLINE_REQUIRE_TOOLS=1 but %s", pg.skip)
		}
		t.Skipf("%s; set HOTLINE_REQUIRE_TOOLS=1 to fail instead", pg.skip)
	}
	if pg.err != nil {
		t.Fatalf("test PostgreSQL cluster: %v", pg.err)
	}
	name := fmt.Sprintf("t%d", pg.n.Add(1))
	admin, err := sql.Open("pgx", pg.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return pg.dsn(name)
}

// pgBin finds Debian's PostgreSQL binaries: /usr/lib/postgresql/<version>/bin.
func pgBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) > 0 {
		return filepath.Dir(dirs[len(dirs)-1])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func startPostgres() {
	bin := pgBin()
	if bin == "" {
		pg.skip = "PostgreSQL is not installed (apt-get install postgresql)"
		return
	}
	dir, err := os.MkdirTemp("", "hotline-pg-")
	if err != nil {
		pg.err = err
		return
	}
	// initdb refuses to run as root: run the cluster as the postgres user then.
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			pg.err = fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			pg.err = err
			return
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(args ...string) error {
		args = slices.Concat(asUser, args)
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", filepath.Base(args[len(asUser)]), err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run(filepath.Join(bin, "initdb"), "-D", data, "-U", "hotline", "--auth=trust", "-E", "UTF8",
		"--no-instructions"); err != nil {
		pg.err = err
		return
	}
	var port int
	for attempt := 0; ; attempt++ {
		port, err = freePort()
		if err != nil {
			pg.err = err
			return
		}
		err = run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60",
			"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s", port, dir), "start")
		if err == nil {
			break
		}
		if attempt == 2 { // the port was taken between freePort and the start
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			pg.err = fmt.Errorf("%w\n%s", err, log)
			return
		}
	}
	pg.dsn = func(db string) string {
		return fmt.Sprintf("postgres://hotline@127.0.0.1:%d/%s?sslmode=disable", port, db)
	}
	pg.ctl = func(action string) error {
		args := []string{filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60"}
		if action == "start" {
			args = append(args, "-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s", port, dir))
		} else {
			args = append(args, "-m", "fast")
		}
		return run(append(args, action)...)
	}
	pg.stop = func() {
		_ = run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
}

// pgPause stops the test cluster (as a PostgreSQL server going down would) until pgResume;
// it is started again when the test ends in any case. No records test runs in parallel, so
// none other sees it down.
func pgPause(t *testing.T) {
	t.Helper()
	if err := pg.ctl("stop"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.ctl("start") })
}

// pgResume starts the test cluster again.
func pgResume(t *testing.T) {
	t.Helper()
	if err := pg.ctl("start"); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// backend is a store to run the contract tests against.
type backend struct {
	name string
	// location returns where a new, empty store is: a file path or a DSN.
	location func(t *testing.T) string
	open     func(ctx context.Context, loc string) (*DB, error)
}

var backends = []backend{
	{
		name:     "sqlite",
		location: func(t *testing.T) string { return filepath.Join(t.TempDir(), "records.db") },
		open:     OpenSQLite,
	},
	{
		name:     "postgres",
		location: postgresDSN,
		open:     OpenPostgres,
	},
}

// openStore opens a new, empty store of backend b, closed when the test ends.
func openStore(t *testing.T, b backend) (*DB, string) {
	t.Helper()
	loc := b.location(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := b.open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, loc
}
