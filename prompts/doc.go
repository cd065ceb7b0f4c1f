// Package prompts owns the recorded messages the IVR plays: it loads them
// once at start-up, checks them, pre-encodes them into ready-to-send G.711
// frames, and catalogues them by language and name.
//
// A prompt set is a directory tree laid out as <lang>/<name>.wav, for
// example en/greeting.wav and es/greeting.wav. The default set, rendered
// from text by render.sh and committed under default/, is compiled into the
// binary (LoadEmbedded), so the server runs with no files; operators can put
// their own recordings over it (LoadDir, then Overlay). Every bad file is
// reported by its path when the set is loaded, not when a caller first
// hears it.
//
// Recordings may be 16-bit PCM, μ-law or A-law at 8 kHz, or 16-bit PCM at
// 16, 44.1 or 48 kHz, which is resampled to 8 kHz as it loads (resample.go:
// a polyphase windowed-sinc filter, flat to 3.4 kHz and 80 dB down from
// 4 kHz). All of them must be mono. Everything is decoded and encoded once
// at load; playing a prompt only slices ready-made G.711 frames.
//
// Each language can fall back to another (WithFallbacks): es-mx to es, say,
// so a variant needs only the recordings that differ. Get follows the
// chain; Lookup says which language answered; Missing lists what a
// language lacks itself and Unresolved what no fallback covers. Adding a
// language is a directory of recordings plus an entry in the
// configuration.
//
// Number and Duration speak numbers ("ciento veintiuno") and wait times
// ("about five minutes") by joining word recordings (num_21, about, ...)
// under per-language rules (spoken.go), for English and Spanish; Join
// makes one prompt of such a sequence.
//
// Hold is the music-on-hold: a calm 32-second loop of soft sine-tone chords
// synthesised on first use (no recording, no copyright), at about -20 dBFS
// peak and seamless when repeated; HoldAudio gives its G.711 frames.
//
// A Catalogue and its Prompts never change after loading and are shared by
// every call, so they are safe for concurrent use; callers must treat the
// slices in a Prompt as read-only. To reload, load a new Catalogue and swap
// it in.
package prompts
