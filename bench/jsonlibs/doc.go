// Package jsonlibs measures well-kept JSON libraries against Capstan's
// hand-written decoders on the bodies devices send. It is its own module
// so that the libraries it compares are not dependencies of Capstan.
package jsonlibs
