package media

import "errors"

var (
	// ErrNoPorts is returned by Ports.Listen and NewLeg when every even port
	// of the range is in use or refused by the operating system.
	ErrNoPorts = errors.New("media: no free rtp port")

	// ErrClosed is returned by Play when the leg ends before the prompt has
	// been sent. When the leg ended because of inactivity the error also
	// matches ErrInactive.
	ErrClosed = errors.New("media: leg closed")

	// ErrInactive is the reason a leg ends when no valid RTP arrived for
	// LegConfig.InactivityTimeout.
	ErrInactive = errors.New("media: no rtp received within the inactivity timeout")

	// ErrFailed is the reason a leg ends when its own code failed (a bug caught by recover):
	// that call's media ends, the process and every other call go on.
	ErrFailed = errors.New("media: leg failed")

	// ErrReplaced is returned by Play when a newer Play on the same leg
	// replaced the prompt before it was fully sent.
	ErrReplaced = errors.New("media: playback replaced by a newer prompt")

	// ErrBadAudio is returned by Play when the audio is not a whole number of
	// 160-byte (20 ms) G.711 frames.
	ErrBadAudio = errors.New("media: audio is not a whole number of 160-byte frames")

	// ErrPayloadType is returned by NewLeg when the payload type to send is
	// neither 0 (PCMU) nor 8 (PCMA), or the telephone-event type is not a
	// valid RTP payload type.
	ErrPayloadType = errors.New("media: unsupported payload type")

	// ErrInvalidConfig is returned by NewLeg when a required argument is
	// missing.
	ErrInvalidConfig = errors.New("media: invalid leg configuration")

	// ErrShortEvent is returned by ParseEvent when the payload is shorter
	// than one 4-byte RFC 4733 event block.
	ErrShortEvent = errors.New("media: telephone-event payload too short")

	// ErrBridged is returned by Play while the leg is bridged (and by a Play
	// that a bridge interrupted), and by NewBridge when a leg is already in
	// a bridge.
	ErrBridged = errors.New("media: leg is bridged")

	// ErrInConference is returned by Conference.Join and NewBridge when a leg
	// is already in a conference.
	ErrInConference = errors.New("media: leg is in a conference")

	// ErrNotInConference is returned by Conference.SetMode for a leg that is
	// not one of its participants.
	ErrNotInConference = errors.New("media: leg is not in the conference")

	// ErrConferenceClosed is returned by Conference.Join after Close.
	ErrConferenceClosed = errors.New("media: conference closed")

	// ErrSchedulerRunning is returned by Scheduler.Run when the scheduler is
	// already running.
	ErrSchedulerRunning = errors.New("media: scheduler already running")
)
