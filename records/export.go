package records

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader is the first line of Export's CSV, naming its columns:
//
//	call_id       the call's random id (as in the server's logs)
//	node          the server that took the call
//	line          the configured line name that was dialled
//	caller_hash   HMAC-SHA256 of the caller's number under the installation's key, in hex;
//	              equal for repeat callers, empty for anonymous ones; never the number
//	start         when the call arrived                  } UTC, RFC 3339 with milliseconds
//	answered      when the server answered               } (2026-03-01T02:03:04.567Z);
//	queue_enter   when it first entered a queue          } empty when the call never got
//	connected     when an advocate or target answered    } there
//	end           when it ended
//	language      the language chosen in the menus
//	reason        the reason chosen in the menus
//	route         the route that decided ("menu" when a menu action did)
//	steps         the queues and targets it went to, in order, joined by " > "
//	queue         the last queue it was in
//	wait_seconds  queue_enter to connected (or to end), seconds with milliseconds
//	talk_seconds  connected to end
//	wrap_up_seconds  the wrap-up time the advocate had after the call
//	advocate      the id of the advocate who took it
//	outcome       completed, abandoned, menu_hangup, message, transferred, failed,
//	              shutdown, shutdown_fatal, cancelled, no_ack, setup_failed, interrupted
//	              or in_progress (see Outcome)
//	end_reason    why the call ended when the outcome does not say (shutdown_fatal: the
//	              error the server stopped on)
const CSVHeader = "call_id,node,line,caller_hash,start,answered,queue_enter,connected,end,language,reason,route,steps,queue,wait_seconds,talk_seconds,wrap_up_seconds,advocate,outcome,end_reason"

// csvTime is the format of times in the CSV.
const csvTime = "2006-01-02T15:04:05.000Z07:00"

// Export writes the records of calls that started in [since, until) as CSV (CSVHeader
// first), oldest first; a zero since or until leaves that end open. If the query fails,
// nothing has been written.
func (s *DB) Export(ctx context.Context, w io.Writer, since, until time.Time) error {
	// Read everything first: an error half-way through a streamed file would leave the
	// reader a CSV that looks whole. A year of a busy hotline is a few tens of MB.
	recs, err := s.Records(ctx, since, until)
	if err != nil {
		return err
	}
	return WriteCSV(w, recs)
}

// WriteCSV writes recs as CSV, CSVHeader first.
func WriteCSV(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(CSVHeader, ",")); err != nil {
		return fmt.Errorf("records: csv: %w", err)
	}
	for i := range recs {
		r := &recs[i]
		if err := cw.Write([]string{
			r.CallID, r.Node, r.Line, r.CallerHash, csvTimeOf(r.Start), csvTimeOf(r.Answered),
			csvTimeOf(r.QueueEnter), csvTimeOf(r.Connected), csvTimeOf(r.End), r.Language, r.Reason,
			r.Route, strings.Join(r.Steps, stepSep), r.Queue, seconds(r.Wait), seconds(r.Talk),
			seconds(r.WrapUp), r.Advocate, string(r.Outcome), r.EndReason,
		}); err != nil {
			return fmt.Errorf("records: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("records: csv: %w", err)
	}
	return nil
}

func csvTimeOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(csvTime)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// ParseTime parses a since or until filter: an RFC 3339 time (2026-03-01T00:00:00Z,
// 2026-03-01T00:00:00-06:00), or a date (2026-03-01), which means midnight at its start in
// loc (UTC when loc is nil). "" gives the zero time: no bound.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date like 2026-03-01 nor an RFC 3339 time like 2026-03-01T00:00:00Z", s)
}
