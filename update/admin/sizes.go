package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/capstan-io/capstan/update/release"
)

// recordLimiter is what a store that knows its record size limit offers;
// *release.Store does.
type recordLimiter interface {
	MaxValueBytes() int
	CheckBundleSize(b release.Bundle) error
}

var _ recordLimiter = (*release.Store)(nil)

// checkBundleSize refuses, before the zip is stored, metadata that could
// never be written: 413 metadata_too_large naming the limit.
func (a *API) checkBundleSize(b release.Bundle) error {
	rl, ok := a.store.(recordLimiter)
	if !ok {
		return nil
	}
	if err := rl.CheckBundleSize(b); err != nil {
		var te *release.TooLargeError
		if errors.As(err, &te) {
			return newError(http.StatusRequestEntityTooLarge, "metadata_too_large",
				te.Error()+"; list fewer manifest entries, or raise max_payload on the NATS server")
		}
		return fmt.Errorf("check bundle size: %w", err)
	}
	return nil
}

// recordTooLarge is the 413 of a write the NATS client refused as larger
// than the server's max_payload, or the store as larger than its limit.
func (a *API) recordTooLarge(err error) *apiError {
	var te *release.TooLargeError
	if errors.As(err, &te) {
		return newError(http.StatusRequestEntityTooLarge, "record_too_large", te.Error())
	}
	msg := "the change is larger than one record may be"
	if rl, ok := a.store.(recordLimiter); ok {
		msg = fmt.Sprintf("the change is larger than the %d bytes one record may be (the NATS server's max_payload)", rl.MaxValueBytes())
	}
	return newError(http.StatusRequestEntityTooLarge, "record_too_large", msg)
}

// isTooLarge reports a write refused for its size.
func isTooLarge(err error) bool {
	return errors.Is(err, release.ErrTooLarge) || errors.Is(err, nats.ErrMaxPayload)
}
