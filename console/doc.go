// Package console is the advocates' and supervisors' console in the browser, served under
// /console/ on the HTTP listener: plain HTML, CSS and JavaScript embedded in the binary,
// with no build step.
//
// Advocates sign in with their SIP account (the password is checked against the
// configured digest HA1, so there is no second secret store); failed sign-ins count towards
// the same per-source ban as failed SIP authentications. Sessions live in memory behind an
// HttpOnly, SameSite=Strict cookie (Secure under TLS), time out when idle, and every change
// needs the session's CSRF token and a same-origin request. The page gets its view over
// Server-Sent Events, whole on every (re)connect.
//
// An advocate sees their own state, the buttons to change it, a wrap-up countdown and the
// card of the call ringing or talking to them: queue, language, reason and time waited.
// Nothing that identifies a caller (number, call id) is ever sent to the page. A supervisor
// also sees a wallboard per queue and every advocate, and can change anyone's state.
package console
