package release

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
)

// overrideShards is the number of override shards per app; a change
// copies one shard, about 1/256 of the app's overrides.
const overrideShards = 256

var shardSeed = maphash.MakeSeed()

type appState struct {
	app      App
	channels map[string]*Channel
	// sorted by name; rebuilt whenever channels change
	channelList []*Channel
	bundles     map[string]*Bundle
	// hidden marks an app whose own entry is invalid: it is unknown to
	// readers, as if deleted, while its channels and bundles are kept for
	// when a good value comes back.
	hidden bool
}

// uuid is a device id in canonical lowercase UUID form, as its 16 bytes.
type uuid [16]byte

// ovrShard holds part of an app's overrides, the values indexing the
// app's channel-name table. Devices whose id is a canonical UUID (what the
// plugin sends) are keyed by its 16 bytes: such a map holds no pointers,
// so it is small and the GC never scans it.
type ovrShard struct {
	uuids map[uuid]uint32
	other map[string]uint32
}

// appOverrides holds the device overrides of one app.
type appOverrides struct {
	// names is the channel-name table; never modified in place once
	// published (builders copy it before appending).
	names  []string
	shards [overrideShards]*ovrShard
	n      int
}

// Snapshot is an immutable view of the whole release state. Readers never
// lock: a new Snapshot replaces the old one on every change.
type Snapshot struct {
	apps      map[string]*appState
	overrides map[string]*appOverrides
	nOverride int
	// choices holds devices' own setChannel choices (old plugins).
	choices map[string]*appChoices
	// tokens holds admin token hashes by hex digest.
	tokens map[string]Token
}

// Empty returns a snapshot with nothing in it.
func Empty() *Snapshot {
	return &Snapshot{apps: map[string]*appState{}, overrides: map[string]*appOverrides{}}
}

// live is an app's state as readers see it: nil when the app is absent
// or hidden.
func (s *Snapshot) live(id string) *appState {
	if a := s.apps[id]; a != nil && !a.hidden {
		return a
	}
	return nil
}

// App returns the app with this id.
func (s *Snapshot) App(id string) (App, bool) {
	a := s.live(id)
	if a == nil {
		return App{}, false
	}
	return a.app, true
}

// Apps returns every app, sorted by id.
func (s *Snapshot) Apps() []App {
	out := make([]App, 0, len(s.apps))
	for _, a := range s.apps {
		if !a.hidden {
			out = append(out, a.app)
		}
	}
	slices.SortFunc(out, func(a, b App) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Channel returns a channel of an app; the pointer must not be modified.
func (s *Snapshot) Channel(appID, name string) (*Channel, bool) {
	a := s.live(appID)
	if a == nil {
		return nil, false
	}
	c, ok := a.channels[name]
	return c, ok
}

// Channels returns an app's channels sorted by name; do not modify them.
func (s *Snapshot) Channels(appID string) []*Channel {
	if a := s.live(appID); a != nil {
		return a.channelList
	}
	return nil
}

// Bundle returns a bundle of an app; the pointer must not be modified.
func (s *Snapshot) Bundle(appID, version string) (*Bundle, bool) {
	a := s.live(appID)
	if a == nil {
		return nil, false
	}
	b, ok := a.bundles[version]
	return b, ok
}

// Bundles returns an app's bundles in no particular order.
func (s *Snapshot) Bundles(appID string) []*Bundle {
	a := s.live(appID)
	if a == nil {
		return nil
	}
	out := make([]*Bundle, 0, len(a.bundles))
	for _, b := range a.bundles {
		out = append(out, b)
	}
	return out
}

// Override returns the channel an operator pinned the device to.
// deviceID must already be lowercase. An absent app's pins stay in the
// snapshot until the deletes that sweep them arrive; every caller has
// already looked the app up, so Override, on the update-check path, does
// not look again.
func (s *Snapshot) Override(appID, deviceID string) (string, bool) {
	a := s.overrides[appID]
	if a == nil {
		return "", false
	}
	var i uint32
	var ok bool
	if u, isUUID := parseUUID(deviceID); isUUID {
		if sh := a.shards[uuidShard(u)]; sh != nil {
			i, ok = sh.uuids[u]
		}
	} else if sh := a.shards[stringShard(deviceID)]; sh != nil {
		i, ok = sh.other[deviceID]
	}
	if !ok {
		return "", false
	}
	return a.names[i], true
}

// Overrides calls fn for each override of an app (all apps when appID is
// ""). Like its channels, an absent or hidden app's pins are not listed.
func (s *Snapshot) Overrides(appID string, fn func(Override) bool) {
	if appID != "" {
		if a := s.overrides[appID]; a != nil && s.live(appID) != nil {
			a.each(appID, fn)
		}
		return
	}
	for id, a := range s.overrides {
		if s.live(id) == nil {
			continue
		}
		if !a.each(id, fn) {
			return
		}
	}
}

func (a *appOverrides) each(appID string, fn func(Override) bool) bool {
	for _, sh := range a.shards {
		if sh == nil {
			continue
		}
		for u, i := range sh.uuids {
			if !fn(Override{AppID: appID, DeviceID: u.String(), Channel: a.names[i]}) {
				return false
			}
		}
		for d, i := range sh.other {
			if !fn(Override{AppID: appID, DeviceID: d, Channel: a.names[i]}) {
				return false
			}
		}
	}
	return true
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

// uuidHexAt is where each byte's two hex digits start in the text form.
var uuidHexAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// parseUUID accepts exactly the canonical lowercase form
// (8-4-4-4-12 hex digits), so String gives back the same id.
func parseUUID[T string | []byte](s T) (u uuid, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	for j, i := range uuidHexAt {
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi > 15 || lo > 15 {
			return u, false
		}
		u[j] = hi<<4 | lo
	}
	return u, true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 255
}

const hexDigits = "0123456789abcdef"

// String is the canonical lowercase form.
func (u uuid) String() string {
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[c>>4], hexDigits[c&15]
		j += 2
	}
	return string(b[:])
}

func uuidShard(u uuid) int {
	x := binary.LittleEndian.Uint64(u[:8]) ^ binary.LittleEndian.Uint64(u[8:])
	return int((x * 0x9e3779b97f4a7c15) >> 56) // overrideShards = 256
}

func stringShard(s string) int { return int(stringShardN(s, overrideShards)) }

func stringShardN(s string, n uint64) uint64 { return maphash.String(shardSeed, s) % n }

// Builder derives a new Snapshot from an old one, copying only the apps
// and override shards it touches.
type Builder struct {
	base    *Snapshot
	next    *Snapshot
	ownApps map[string]bool
	// ownOvr holds the apps whose overrides this builder already copied.
	ownOvr    map[string]*ovrOwned
	ownOvrMap bool
	dirtyList map[string]bool
	intern    map[string]string
	ownTokens bool
	// ownChoice marks the apps and shards of choices this builder copied.
	ownChoice    map[string]*[choiceShards]bool
	ownChoiceMap bool
	// lastOvr caches ovrApp's answer for lastOvrApp: loads and bursts
	// come in runs of one app.
	lastOvrApp string
	lastOvr    *appOverrides
	lastOwn    *ovrOwned
}

// NewBuilder starts from base (nil means empty).
func NewBuilder(base *Snapshot) *Builder {
	if base == nil {
		base = Empty()
	}
	next := &Snapshot{apps: make(map[string]*appState, len(base.apps)), overrides: base.overrides, nOverride: base.nOverride, choices: base.choices, tokens: base.tokens}
	for k, v := range base.apps {
		next.apps[k] = v
	}
	return &Builder{base: base, next: next, ownApps: map[string]bool{}, ownOvr: map[string]*ovrOwned{}, dirtyList: map[string]bool{}, intern: map[string]string{}}
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
		c := &appState{app: a.app, channels: make(map[string]*Channel, len(a.channels)), bundles: make(map[string]*Bundle, len(a.bundles)), channelList: a.channelList, hidden: a.hidden}
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
func (b *Builder) PutApp(a App) {
	st := b.app(a.ID, true)
	st.app, st.hidden = a, false
}

// hideApp makes an app unknown to readers, as a delete would, but keeps
// its channels and bundles so that a later PutApp restores them: the
// result does not depend on the order entries arrive in. The app's key
// does exist: code telling orphaned children from live apps must count a
// hidden app as existing, or it would delete data over one bad value.
func (b *Builder) hideApp(id string) {
	st := b.app(id, true)
	st.app, st.hidden = App{ID: id}, true
}

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

// ovrOwned is what a builder knows about an app's overrides it copied.
type ovrOwned struct {
	shards [overrideShards]bool
	// index maps channel names to their place in names; built on first use.
	index map[string]uint32
}

// ovrApp returns the app's overrides owned by this builder, copying them
// (without their shards) on first use; nil when absent and !create.
func (b *Builder) ovrApp(appID string, create bool) (*appOverrides, *ovrOwned) {
	if b.lastOwn != nil && appID == b.lastOvrApp {
		return b.lastOvr, b.lastOwn
	}
	if own := b.ownOvr[appID]; own != nil {
		a := b.next.overrides[appID]
		b.lastOvrApp, b.lastOvr, b.lastOwn = appID, a, own
		return a, own
	}
	old := b.next.overrides[appID]
	if old == nil && !create {
		return nil, nil
	}
	if !b.ownOvrMap {
		b.next.overrides = maps.Clone(b.next.overrides)
		if b.next.overrides == nil {
			b.next.overrides = map[string]*appOverrides{}
		}
		b.ownOvrMap = true
	}
	a := &appOverrides{}
	if old != nil {
		*a = *old
		// Appending must never write into a table older snapshots share.
		a.names = slices.Clip(a.names)
	}
	own := &ovrOwned{}
	b.next.overrides[appID] = a
	b.ownOvr[appID] = own
	b.lastOvrApp, b.lastOvr, b.lastOwn = appID, a, own
	return a, own
}

func (b *Builder) ovrShard(a *appOverrides, own *ovrOwned, i int) *ovrShard {
	if !own.shards[i] {
		sh := &ovrShard{}
		if old := a.shards[i]; old != nil {
			sh.uuids, sh.other = maps.Clone(old.uuids), maps.Clone(old.other)
		}
		a.shards[i] = sh
		own.shards[i] = true
	}
	return a.shards[i]
}

func (b *Builder) channelIndex(a *appOverrides, own *ovrOwned, name string) uint32 {
	if own.index == nil {
		own.index = make(map[string]uint32, len(a.names)+1)
		for i, n := range a.names {
			own.index[n] = uint32(i)
		}
	}
	if i, ok := own.index[name]; ok {
		return i
	}
	return b.addChannelName(a, own, b.internStr(name))
}

// channelIndexBytes is channelIndex for a name in bytes; it allocates
// only for a name new to the builder.
func (b *Builder) channelIndexBytes(a *appOverrides, own *ovrOwned, name []byte) uint32 {
	if own.index != nil {
		if i, ok := own.index[string(name)]; ok {
			return i
		}
	}
	return b.channelIndex(a, own, b.internBytes(name))
}

func (b *Builder) addChannelName(a *appOverrides, own *ovrOwned, name string) uint32 {
	i := uint32(len(a.names))
	a.names = append(a.names, name)
	own.index[name] = i
	return i
}

func (b *Builder) internStr(s string) string {
	if v, ok := b.intern[s]; ok {
		return v
	}
	b.intern[s] = s
	return s
}

// internBytes is internStr for bytes; it allocates only for a new string.
func (b *Builder) internBytes(p []byte) string {
	if v, ok := b.intern[string(p)]; ok {
		return v
	}
	s := string(p)
	b.intern[s] = s
	return s
}

// internApp is internBytes for app ids, skipping the lookup for the app
// of the last override.
func (b *Builder) internApp(p []byte) string {
	if b.lastOwn != nil && string(p) == b.lastOvrApp {
		return b.lastOvrApp
	}
	return b.internBytes(p)
}

// PutOverride pins a device; DeviceID is lowercased here.
func (b *Builder) PutOverride(o Override) {
	dev := strings.ToLower(o.DeviceID)
	if u, ok := parseUUID(dev); ok {
		b.putOverrideUUID(o.AppID, u, o.Channel)
		return
	}
	a, own := b.ovrApp(b.internStr(o.AppID), true)
	sh := b.ovrShard(a, own, stringShard(dev))
	if sh.other == nil {
		sh.other = map[string]uint32{}
	}
	if _, ok := sh.other[dev]; !ok {
		a.n++
		b.next.nOverride++
	}
	sh.other[dev] = b.channelIndex(a, own, o.Channel)
}

func (b *Builder) putOverrideUUID(appID string, u uuid, channel string) {
	a, own := b.ovrApp(b.internStr(appID), true)
	b.putUUID(a, own, u, b.channelIndex(a, own, channel))
}

// putOverrideUUIDBytes is putOverrideUUID for an app id already interned
// and a channel name in bytes, as the bucket's entries give them.
func (b *Builder) putOverrideUUIDBytes(appID string, u uuid, channel []byte) {
	a, own := b.ovrApp(appID, true)
	b.putUUID(a, own, u, b.channelIndexBytes(a, own, channel))
}

func (b *Builder) putUUID(a *appOverrides, own *ovrOwned, u uuid, ch uint32) {
	sh := b.ovrShard(a, own, uuidShard(u))
	if sh.uuids == nil {
		sh.uuids = map[uuid]uint32{}
	}
	n := len(sh.uuids)
	sh.uuids[u] = ch
	if len(sh.uuids) > n {
		a.n++
		b.next.nOverride++
	}
}

// DeleteOverride unpins a device.
func (b *Builder) DeleteOverride(appID, deviceID string) {
	dev := strings.ToLower(deviceID)
	if u, ok := parseUUID(dev); ok {
		b.deleteOverrideUUID(appID, u)
		return
	}
	i := stringShard(dev)
	if _, ok := b.next.Override(appID, dev); !ok {
		return
	}
	a, own := b.ovrApp(appID, false)
	delete(b.ovrShard(a, own, i).other, dev)
	a.n--
	b.next.nOverride--
}

func (b *Builder) deleteOverrideUUID(appID string, u uuid) {
	a := b.next.overrides[appID]
	if a == nil {
		return
	}
	i := uuidShard(u)
	if sh := a.shards[i]; sh == nil {
		return
	} else if _, ok := sh.uuids[u]; !ok {
		return
	}
	a, own := b.ovrApp(appID, false)
	delete(b.ovrShard(a, own, i).uuids, u)
	a.n--
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
	for id := range b.ownOvr {
		if a := b.next.overrides[id]; a != nil && a.n == 0 {
			delete(b.next.overrides, id) // b owns this map
		}
	}
	s := b.next
	b.next = nil
	return s
}
