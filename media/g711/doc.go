// Package g711 converts between 16-bit linear PCM and ITU-T G.711 μ-law
// (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8).
//
// The conversions follow the Sun Microsystems / CCITT reference code
// (g711.c), which is what telephony stacks interoperate with: μ-law uses the
// 14-bit magnitude with a bias of 0x84 and clips at 8159, A-law uses the
// 13-bit magnitude, and both invert bits on the wire as G.711 requires (μ-law
// all bits, A-law the even bits). μ-law/A-law transcoding uses the G.711
// conversion tables directly rather than going through linear PCM.
//
// All conversions are table lookups built once at init, so they are cheap
// enough to run per sample on the media path; the Append helpers do not
// allocate when dst has room.
package g711
