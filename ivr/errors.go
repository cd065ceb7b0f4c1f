package ivr

import "errors"

// ErrHangup is returned when the caller hung up during the menus.
var ErrHangup = errors.New("caller hung up")
