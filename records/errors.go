package records

import "errors"

// Errors Finish returns. ErrNotWritten and ErrHeldInMemory do not mean the record is lost:
// it waits, and is written when the store takes it. ErrDropped does.
var (
	// ErrNotWritten is a record still waiting after Options.Timeout.
	ErrNotWritten = errors.New("records: the record is not written yet (the store is slow or unavailable)")
	// ErrHeldInMemory is a record that waits in memory: neither the store nor the spool
	// file took it.
	ErrHeldInMemory = errors.New("records: the store and the spool are unavailable; the record waits in memory")
	// ErrDropped is a record dropped: the memory queue was full, the Recorder closed, or
	// the store refused the record on its own. It is counted in Stats.Dropped.
	ErrDropped = errors.New("records: the record was dropped")
)

// ErrStoreUnavailable is an export asked of a Recorder whose store is not open yet.
var ErrStoreUnavailable = errors.New("records: the call records store is not open yet")
