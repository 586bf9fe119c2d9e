package release

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// KV key scheme: a type prefix, then base64url (unpadded) segments, so app
// ids with dots and versions with '+' or '/' never break NATS subjects.
const (
	kindApp      = "app"
	kindChannel  = "chan"
	kindBundle   = "bundle"
	kindOverride = "ovr"
	kindToken    = "token"
	// kindTokenName holds the hash of the token with that name; created
	// only if absent, it keeps names unique across fronts.
	kindTokenName = "tokname"
	kindChoice    = "choice"
	// kindChanSeq holds the last channel id handed out for an app.
	kindChanSeq = "chanseq"
)

// maxSegment bounds ids, names and versions so keys stay small.
const maxSegment = 256

var b64 = base64.RawURLEncoding

func enc(s string) string { return b64.EncodeToString([]byte(s)) }

func appKey(app string) string         { return kindApp + "." + enc(app) }
func chanKey(app, name string) string  { return kindChannel + "." + enc(app) + "." + enc(name) }
func bundleKey(app, ver string) string { return kindBundle + "." + enc(app) + "." + enc(ver) }
func ovrKey(app, dev string) string    { return kindOverride + "." + enc(app) + "." + enc(dev) }
func tokenKey(hashHex string) string   { return kindToken + "." + hashHex }
func chanSeqKey(app string) string     { return kindChanSeq + "." + enc(app) }
func tokenNameKey(name string) string  { return kindTokenName + "." + enc(name) }

// parsedKey is a decoded KV key.
type parsedKey struct {
	kind string
	segs []string
}

// parseKey decodes a key written by this package.
func parseKey(key string) (parsedKey, error) {
	parts := strings.Split(key, ".")
	pk := parsedKey{kind: parts[0]}
	want := map[string]int{kindApp: 1, kindChannel: 2, kindBundle: 2, kindOverride: 2, kindToken: 1, kindTokenName: 1, kindChanSeq: 1, kindChoice: 2}[pk.kind]
	if want == 0 {
		return pk, fmt.Errorf("key %q: unknown kind", key)
	}
	if len(parts)-1 != want {
		return pk, fmt.Errorf("key %q: want %d segments", key, want)
	}
	if pk.kind == kindToken {
		pk.segs = parts[1:]
		return pk, nil
	}
	for _, p := range parts[1:] {
		raw, err := b64.DecodeString(p)
		if err != nil {
			return pk, fmt.Errorf("key %q: %w", key, err)
		}
		pk.segs = append(pk.segs, string(raw))
	}
	return pk, nil
}

// ovrKeyPrefix starts every override key.
const ovrKeyPrefix = kindOverride + "."

// ovrKeyBuf holds the decoded segments of an override key; most fit in
// its arrays, so decoding allocates nothing.
type ovrKeyBuf struct {
	app, dev [maxSegment]byte
}

// parseOvrKey decodes an override key ("ovr.<app>.<device>") into buf,
// accepting and rejecting exactly what parseKey does. The returned slices
// alias buf (or fresh memory for oversized segments).
func parseOvrKey(key string, buf *ovrKeyBuf) (app, dev []byte, err error) {
	rest, ok := strings.CutPrefix(key, ovrKeyPrefix)
	if !ok {
		return nil, nil, fmt.Errorf("key %q: not an override key", key)
	}
	a, d, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(d, ".") {
		return nil, nil, fmt.Errorf("key %q: want 2 segments", key)
	}
	if app, err = decodeSeg(buf.app[:], a); err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", key, err)
	}
	if dev, err = decodeSeg(buf.dev[:], d); err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", key, err)
	}
	return app, dev, nil
}

// decodeSeg decodes one base64url segment into dst when it fits.
func decodeSeg(dst []byte, seg string) ([]byte, error) {
	if b64.DecodedLen(len(seg)) > len(dst) {
		dst = make([]byte, b64.DecodedLen(len(seg)))
	}
	// Decode only reads its source, so viewing the string's bytes is safe
	// and saves a copy per key on a million-key load.
	n, err := b64.Decode(dst, unsafe.Slice(unsafe.StringData(seg), len(seg)))
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

// validSegment rejects what must never be an id, name or version: empty,
// oversized, invalid UTF-8 or control characters.
func validSegment(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > maxSegment {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, maxSegment)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, what)
		}
	}
	return nil
}

// validPathSegment is validSegment plus what a URL path segment of a
// bundle download must not hold: app ids and versions appear in
// /bundles/{app}/{version}.zip.
func validPathSegment(what, s string) error {
	if err := validSegment(what, s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "/\\") || strings.Contains(s, "..") || s == "." {
		return fmt.Errorf("%w: %s must not contain '/', '\\' or '..'", ErrInvalid, what)
	}
	return nil
}

// ValidHashHex accepts a lowercase SHA-256 hex digest.
func ValidHashHex(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
