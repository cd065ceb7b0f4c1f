package records

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// errSpoolFull is the spool file at its size limit.
var errSpoolFull = errors.New("records: the spool file is full (records.spool_max_mb)")

// spool is an append-only file of JSON lines, one op each: the records that wait there
// while the store is unavailable, in the order they were made, kept across restarts. Each
// append is fsynced before it counts. It is read back from the start when the store comes
// back, and emptied once everything in it is written. Only the Recorder's writer goroutine
// uses it.
type spool struct {
	path string // "" keeps no spool on disk
	max  int64  // bytes
	size int64  // bytes in the file
	n    int    // ops in the file
	off  int64  // bytes already written to the store by an unfinished replay
	bad  int    // lines that did not parse (a write cut off by a crash), skipped
	torn bool   // the file does not end with a newline: the next append starts a line
}

// openSpool opens the spool at path and counts what an earlier run left in it.
func openSpool(path string, max int64) (*spool, error) {
	s := &spool{path: path, max: max}
	if path == "" {
		return s, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("records: spool: %w", err)
	}
	defer f.Close()
	sc := newLineScanner(f)
	for sc.Scan() {
		s.n++
		s.size += int64(len(sc.Bytes())) + 1
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("records: spool %s: %w", path, err)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() != s.size {
		// A last line cut off by a crash or a full disk: what is appended next must not
		// run on from it.
		s.torn, s.size = true, fi.Size()
	}
	return s, nil
}

func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // a record is well under 4 KiB
	return sc
}

// empty reports whether nothing waits in the spool.
func (s *spool) empty() bool { return s.n == 0 }

// append adds ops' durable entries to the spool, fsynced, and returns how many it added. On
// error nothing is added: a half-written tail is cut off again.
func (s *spool) append(ops []*op) (int, error) {
	if s.path == "" {
		return 0, errors.New("records: no spool file (records.spool is off)")
	}
	var buf bytes.Buffer
	if s.torn {
		buf.WriteByte('\n')
	}
	enc := json.NewEncoder(&buf)
	n := 0
	for _, o := range ops {
		if !o.durable() {
			continue
		}
		if err := enc.Encode(o); err != nil {
			return 0, fmt.Errorf("records: spool: %w", err)
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if s.size+int64(buf.Len()) > s.max {
		return 0, errSpoolFull
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("records: spool: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		_ = f.Truncate(s.size) // may fail too: a torn last line is skipped when read
		f.Close()
		return 0, fmt.Errorf("records: spool: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("records: spool: %w", err)
	}
	s.size += int64(buf.Len())
	s.n += n
	s.torn = false
	return n, nil
}

// replay reads the spool from where the last replay stopped and hands it to write in
// batches of up to max ops; write returns how many of a batch it applied and why it
// stopped. When everything is applied the file is emptied. A line that does not parse (a
// write torn by a crash or a full disk) is skipped and counted.
func (s *spool) replay(max int, write func([]*op) (int, error)) error {
	if s.n == 0 || s.path == "" {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("records: spool: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return fmt.Errorf("records: spool: %w", err)
	}
	sc := newLineScanner(f)
	var batch []*op
	var ends []int64 // the file offset after each op of batch
	pos := s.off
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := write(batch)
		if n > 0 {
			s.off = ends[n-1]
			s.n -= n
		}
		batch, ends = batch[:0], ends[:0]
		return err
	}
	for sc.Scan() {
		line := sc.Bytes()
		pos += int64(len(line)) + 1
		o := &op{}
		if err := json.Unmarshal(line, o); err != nil || !o.durable() || (o.Rec == nil && o.Att == nil && o.Kind != opRecover) {
			s.bad++
			s.n--
			s.off = pos
			continue
		}
		batch = append(batch, o)
		ends = append(ends, pos)
		if len(batch) >= max {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("records: spool %s: %w", s.path, err)
	}
	if err := flush(); err != nil {
		return err
	}
	// Everything is in the store: start the file afresh.
	if err := os.Truncate(s.path, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("records: spool: %w", err)
	}
	s.size, s.n, s.off, s.torn = 0, 0, 0, false
	return nil
}
