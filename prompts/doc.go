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
// A Catalogue and its Prompts never change after loading and are shared by
// every call, so they are safe for concurrent use; callers must treat the
// slices in a Prompt as read-only. To reload, load a new Catalogue and swap
// it in.
package prompts
