// Package ivr drives a caller through the hotline's voice menus. It knows nothing of SIP or
// RTP: it talks to the small Call interface below, so every menu is tested with a scripted
// call and no network.
package ivr
