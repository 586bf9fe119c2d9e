package release

import (
	"hash/maphash"
	"slices"
	"strings"
)

const overrideShards = 256

var shardSeed = maphash.MakeSeed()

type appState struct {
	app      App
	channels map[string]*Channel
	// sorted by name; rebuilt whenever channels change
	channelList []*Channel
	bundles     map[string]*Bundle
}

type overrideKey struct{ app, device string }

// Snapshot is an immutable view of the whole release state. Readers never
// lock: a new Snapshot replaces the old one on every change.
type Snapshot struct {
	apps      map[string]*appState
	overrides [overrideShards]map[overrideKey]string
	nOverride int
	// tokens holds admin token hashes by hex digest.
	tokens map[string]Token
}

// Empty returns a snapshot with nothing in it.
func Empty() *Snapshot { return &Snapshot{apps: map[string]*appState{}} }

// App returns the app with this id.
func (s *Snapshot) App(id string) (App, bool) {
	a, ok := s.apps[id]
	if !ok {
		return App{}, false
	}
	return a.app, true
}

// Apps returns every app, sorted by id.
func (s *Snapshot) Apps() []App {
	out := make([]App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a.app)
	}
	slices.SortFunc(out, func(a, b App) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Channel returns a channel of an app; the pointer must not be modified.
func (s *Snapshot) Channel(appID, name string) (*Channel, bool) {
	a, ok := s.apps[appID]
	if !ok {
		return nil, false
	}
	c, ok := a.channels[name]
	return c, ok
}

// Channels returns an app's channels sorted by name; do not modify them.
func (s *Snapshot) Channels(appID string) []*Channel {
	if a, ok := s.apps[appID]; ok {
		return a.channelList
	}
	return nil
}

// Bundle returns a bundle of an app; the pointer must not be modified.
func (s *Snapshot) Bundle(appID, version string) (*Bundle, bool) {
	a, ok := s.apps[appID]
	if !ok {
		return nil, false
	}
	b, ok := a.bundles[version]
	return b, ok
}

// Bundles returns an app's bundles in no particular order.
func (s *Snapshot) Bundles(appID string) []*Bundle {
	a, ok := s.apps[appID]
	if !ok {
		return nil
	}
	out := make([]*Bundle, 0, len(a.bundles))
	for _, b := range a.bundles {
		out = append(out, b)
	}
	return out
}

// Override returns the channel an operator pinned the device to.
// deviceID must already be lowercase.
func (s *Snapshot) Override(appID, deviceID string) (string, bool) {
	k := overrideKey{appID, deviceID}
	ch, ok := s.overrides[shardOf(k)][k]
	return ch, ok
}

// Overrides calls fn for each override of an app (all apps when appID is "").
func (s *Snapshot) Overrides(appID string, fn func(Override) bool) {
	for _, sh := range s.overrides {
		for k, ch := range sh {
			if appID != "" && k.app != appID {
				continue
			}
			if !fn(Override{AppID: k.app, DeviceID: k.device, Channel: ch}) {
				return
			}
		}
	}
}

// OverrideCount is the number of device overrides across all apps.
func (s *Snapshot) OverrideCount() int { return s.nOverride }

// TokenHashKnown reports whether an admin token with this SHA-256 hex exists.
func (s *Snapshot) TokenHashKnown(hash string) bool {
	_, ok := s.tokens[hash]
	return ok
}

// Token returns the admin token with this SHA-256 hex.
func (s *Snapshot) Token(hash string) (Token, bool) {
	t, ok := s.tokens[hash]
	return t, ok
}

// Tokens returns every admin token, sorted by name then hash.
func (s *Snapshot) Tokens() []Token {
	out := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Token) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return out
}

func shardOf(k overrideKey) int {
	var h maphash.Hash
	h.SetSeed(shardSeed)
	h.WriteString(k.app)
	h.WriteByte(0)
	h.WriteString(k.device)
	return int(h.Sum64() % overrideShards)
}

// Builder derives a new Snapshot from an old one, copying only the apps
// and override shards it touches.
type Builder struct {
	base      *Snapshot
	next      *Snapshot
	ownApps   map[string]bool
	ownShards [overrideShards]bool
	dirtyList map[string]bool
	intern    map[string]string
	ownTokens bool
}

// NewBuilder starts from base (nil means empty).
func NewBuilder(base *Snapshot) *Builder {
	if base == nil {
		base = Empty()
	}
	next := &Snapshot{apps: make(map[string]*appState, len(base.apps)), overrides: base.overrides, nOverride: base.nOverride, tokens: base.tokens}
	for k, v := range base.apps {
		next.apps[k] = v
	}
	return &Builder{base: base, next: next, ownApps: map[string]bool{}, dirtyList: map[string]bool{}, intern: map[string]string{}}
}

func (b *Builder) app(id string, create bool) *appState {
	a, ok := b.next.apps[id]
	if !ok {
		if !create {
			return nil
		}
		a = &appState{app: App{ID: id}, channels: map[string]*Channel{}, bundles: map[string]*Bundle{}}
		b.next.apps[id] = a
		b.ownApps[id] = true
		return a
	}
	if !b.ownApps[id] {
		c := &appState{app: a.app, channels: make(map[string]*Channel, len(a.channels)), bundles: make(map[string]*Bundle, len(a.bundles)), channelList: a.channelList}
		for k, v := range a.channels {
			c.channels[k] = v
		}
		for k, v := range a.bundles {
			c.bundles[k] = v
		}
		b.next.apps[id] = c
		b.ownApps[id] = true
		a = c
	}
	return a
}

// PutApp adds or replaces an app.
func (b *Builder) PutApp(a App) { b.app(a.ID, true).app = a }

// DeleteApp removes an app with its channels and bundles; its overrides
// stay until deleted themselves (the store deletes them too).
func (b *Builder) DeleteApp(id string) { delete(b.next.apps, id); delete(b.dirtyList, id) }

// PutChannel adds or replaces a channel (creating its app entry if needed).
func (b *Builder) PutChannel(c Channel) {
	a := b.app(c.AppID, true)
	cc := c
	a.channels[c.Name] = &cc
	b.dirtyList[c.AppID] = true
}

// DeleteChannel removes a channel.
func (b *Builder) DeleteChannel(appID, name string) {
	if a := b.app(appID, false); a != nil {
		delete(a.channels, name)
		b.dirtyList[appID] = true
	}
}

// PutBundle adds or replaces a bundle.
func (b *Builder) PutBundle(bu Bundle) {
	bb := bu
	b.app(bu.AppID, true).bundles[bu.Version] = &bb
}

// DeleteBundle removes a bundle.
func (b *Builder) DeleteBundle(appID, version string) {
	if a := b.app(appID, false); a != nil {
		delete(a.bundles, version)
	}
}

func (b *Builder) shard(k overrideKey) map[overrideKey]string {
	i := shardOf(k)
	if !b.ownShards[i] {
		old := b.next.overrides[i]
		m := make(map[overrideKey]string, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		b.next.overrides[i] = m
		b.ownShards[i] = true
	}
	return b.next.overrides[i]
}

func (b *Builder) internStr(s string) string {
	if v, ok := b.intern[s]; ok {
		return v
	}
	b.intern[s] = s
	return s
}

// PutOverride pins a device; DeviceID is lowercased here.
func (b *Builder) PutOverride(o Override) {
	k := overrideKey{b.internStr(o.AppID), strings.ToLower(o.DeviceID)}
	sh := b.shard(k)
	if _, ok := sh[k]; !ok {
		b.next.nOverride++
	}
	sh[k] = b.internStr(o.Channel)
}

// DeleteOverride unpins a device.
func (b *Builder) DeleteOverride(appID, deviceID string) {
	k := overrideKey{appID, strings.ToLower(deviceID)}
	if _, ok := b.next.overrides[shardOf(k)][k]; !ok {
		return
	}
	delete(b.shard(k), k)
	b.next.nOverride--
}

// PutToken adds or replaces an admin token hash.
func (b *Builder) PutToken(t Token) {
	if !b.ownTokens {
		m := make(map[string]Token, len(b.next.tokens)+1)
		for k, v := range b.next.tokens {
			m[k] = v
		}
		b.next.tokens = m
		b.ownTokens = true
	}
	b.next.tokens[t.Hash] = t
}

// DeleteToken forgets an admin token hash.
func (b *Builder) DeleteToken(hash string) {
	if _, ok := b.next.tokens[hash]; !ok {
		return
	}
	b.PutToken(Token{Hash: hash}) // takes ownership of the map
	delete(b.next.tokens, hash)
}

// Build returns the new snapshot; the Builder must not be used after.
func (b *Builder) Build() *Snapshot {
	for id := range b.dirtyList {
		a, ok := b.next.apps[id]
		if !ok {
			continue
		}
		list := make([]*Channel, 0, len(a.channels))
		for _, c := range a.channels {
			list = append(list, c)
		}
		slices.SortFunc(list, func(x, y *Channel) int { return strings.Compare(x.Name, y.Name) })
		a.channelList = list
	}
	s := b.next
	b.next = nil
	return s
}
