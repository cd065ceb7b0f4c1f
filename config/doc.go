// Package config reads the hotline's YAML configuration file.
//
// Decoding is strict: an unknown key, a value of the wrong type or a duration without a
// unit is an error. Missing keys take the defaults shown in the embedded default file
// (see Default), and the result is validated as a whole. Every problem is reported, not
// just the first, as an *Error naming the file, line and field path, e.g.
//
//	hotline.yaml:12: lines[1].number: duplicate of lines[0] (18883737888)
//
// The package does no other I/O than Load reading the file, so it is safe to call on
// reload: a bad file leaves whatever the caller is running untouched.
package config
