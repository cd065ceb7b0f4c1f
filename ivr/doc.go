// Package ivr drives a caller through the hotline's voice menus. It knows nothing of SIP or
// RTP: it talks to the small Call interface it defines (play, digits, hang up), so every
// menu is tested with a scripted call and no network (see the transcripts in testdata).
//
// New compiles the menus of a configuration (config.IVR) into an Engine, which Run drives
// one call through, on the call's goroutine, until an action routes the call or hangs up.
// The Result carries what the menus learned (language, reason, digits collected) for
// routing. The rules, which config's validation relies on:
//
//   - A digit stops the prompt playing at once (barge-in), and digits typed ahead are kept:
//     a caller who knows the menus can type "21" during the greeting and hear nothing more
//     before the call is routed.
//   - In a menu, a key in Keys takes its action; 0 takes the operator action, which routes
//     the call (0 always reaches a person); * plays the menu again; any other key plays
//     the invalid prompt and the menu again, until the retries run out, and then takes the
//     no-input action.
//   - A caller who presses nothing before the first-digit timeout gets the no-input
//     action at once: a caller who cannot press keys, or whose keys do not come through,
//     is not kept waiting. Configuration checks that following no-input actions from any
//     menu reaches a route.
//   - An action sets the language and reason, plays its prompts, and then goes to another
//     menu, routes the call, or hangs up; with none of those it returns to its menu.
//   - A collect menu reads digits up to #, MaxDigits of them, or a pause; 0 is a digit
//     there, and * starts over.
//   - A missing prompt, or one that fails to play, is logged and skipped: it must never
//     keep a caller from a person.
//
// Time comes from Options.After, so tests run the menus' timeouts without waiting.
package ivr
