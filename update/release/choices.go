package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// Choice is the channel a device chose with setChannel, stored on the
// server for plugins that keep no channel on the device. It is the
// device's own, apart from an operator's Override, and never outranks one.
type Choice struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"` // lowercase
	Channel  string `json:"channel"`
}

func choiceKey(app, dev string) string { return kindChoice + "." + enc(app) + "." + enc(dev) }

// choiceShards splits an app's choices so a change copies 1/64 of them.
const choiceShards = 64

type appChoices struct {
	shards [choiceShards]map[string]string
	n      int
}

func choiceShard(dev string) int { return int(stringShardN(dev, choiceShards)) }

// Choice returns the channel a device chose for itself at setChannel.
// deviceID must already be lowercase.
func (s *Snapshot) Choice(appID, deviceID string) (string, bool) {
	a := s.choices[appID]
	if a == nil {
		return "", false
	}
	c, ok := a.shards[choiceShard(deviceID)][deviceID]
	return c, ok
}

// HasChoices reports whether any device of the app has a stored choice;
// it spares the common case a plugin version check.
func (s *Snapshot) HasChoices(appID string) bool { return s.choices[appID] != nil }

// ChoiceCount is the number of stored device choices across all apps.
func (s *Snapshot) ChoiceCount() int {
	n := 0
	for _, a := range s.choices {
		n += a.n
	}
	return n
}

// choiceApp returns the app's choices owned by this builder, copying the
// shard table on first use.
func (b *Builder) choiceApp(appID string, create bool) *appChoices {
	if b.ownChoice == nil {
		b.ownChoice = map[string]*[choiceShards]bool{}
	}
	if _, ok := b.ownChoice[appID]; ok {
		return b.next.choices[appID]
	}
	old := b.next.choices[appID]
	if old == nil && !create {
		return nil
	}
	if !b.ownChoiceMap {
		b.next.choices = maps.Clone(b.next.choices)
		if b.next.choices == nil {
			b.next.choices = map[string]*appChoices{}
		}
		b.ownChoiceMap = true
	}
	a := &appChoices{}
	if old != nil {
		*a = *old
	}
	b.next.choices[appID] = a
	b.ownChoice[appID] = new([choiceShards]bool)
	return a
}

func (b *Builder) choiceShardOwned(appID string, a *appChoices, i int) map[string]string {
	own := b.ownChoice[appID]
	if !own[i] {
		a.shards[i] = maps.Clone(a.shards[i])
		if a.shards[i] == nil {
			a.shards[i] = map[string]string{}
		}
		own[i] = true
	}
	return a.shards[i]
}

// PutChoice records a device's own channel choice.
func (b *Builder) PutChoice(c Choice) {
	dev := strings.ToLower(c.DeviceID)
	a := b.choiceApp(c.AppID, true)
	sh := b.choiceShardOwned(c.AppID, a, choiceShard(dev))
	if _, ok := sh[dev]; !ok {
		a.n++
	}
	sh[dev] = b.internStr(c.Channel)
}

// DeleteChoice forgets a device's own channel choice.
func (b *Builder) DeleteChoice(appID, deviceID string) {
	dev := strings.ToLower(deviceID)
	if _, ok := b.next.Choice(appID, dev); !ok {
		return
	}
	a := b.choiceApp(appID, false)
	delete(b.choiceShardOwned(appID, a, choiceShard(dev)), dev)
	a.n--
	if a.n == 0 {
		delete(b.next.choices, appID) // b owns this map
		delete(b.ownChoice, appID)
	}
}

// PutChoice stores the channel a device chose with setChannel. The last
// choice wins: it is the device's own, so no revision check is needed. A
// choice of a channel deleted meanwhile is ignored when devices resolve.
func (s *Store) PutChoice(ctx context.Context, c Choice) error {
	c.DeviceID = strings.ToLower(c.DeviceID)
	for _, f := range [][2]string{{"app id", c.AppID}, {"device id", c.DeviceID}, {"channel name", c.Channel}} {
		if err := validSegment(f[0], f[1]); err != nil {
			return fmt.Errorf("put channel choice: %w", err)
		}
	}
	if cur, ok := s.Snapshot().Choice(c.AppID, c.DeviceID); ok && cur == c.Channel {
		return nil
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("put channel choice: %w", err)
	}
	rev, err := s.kv.Put(ctx, choiceKey(c.AppID, c.DeviceID), data)
	if err != nil {
		return fmt.Errorf("put channel choice of device %q: %w", c.DeviceID, err)
	}
	s.waitApplied(ctx, rev)
	return nil
}

// DeleteChoice forgets a device's channel choice; no choice is not an error.
func (s *Store) DeleteChoice(ctx context.Context, app, device string) error {
	device = strings.ToLower(device)
	if err := validSegment("app id", app); err != nil {
		return fmt.Errorf("delete channel choice: %w", err)
	}
	if err := validSegment("device id", device); err != nil {
		return fmt.Errorf("delete channel choice: %w", err)
	}
	key := choiceKey(app, device)
	if _, err := s.get(ctx, key); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete channel choice of device %q: %w", device, err)
	}
	rev, err := s.deleteKey(ctx, key, 0)
	if err != nil {
		return fmt.Errorf("delete channel choice of device %q: %w", device, err)
	}
	s.waitApplied(ctx, rev)
	return nil
}

// applyChoice folds a choice entry into b.
func (s *Store) applyChoice(b *Builder, pk parsedKey, del bool, value []byte) error {
	if del {
		b.DeleteChoice(pk.segs[0], pk.segs[1])
		return nil
	}
	var c Choice
	if err := decodeValue(value, &c); err != nil {
		return err
	}
	if c.Channel == "" {
		return errors.New("choice without a channel")
	}
	c.AppID, c.DeviceID = pk.segs[0], pk.segs[1]
	b.PutChoice(c)
	return nil
}
