package update

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/update/release"
)

// Channel calls (PROTOCOL.md §4). Current plugins store their chosen
// channel themselves and send it back as defaultChannel; for older ones
// (see KeepsChannel) the server stores the choice, so the decisions below
// say what to store and the handler writes it.

var (
	okBody      = healthBody
	okUnsetBody = []byte(`{"status":"ok","unset":true}`)
)

// ChannelInfo is one entry of the listChannels answer.
type ChannelInfo struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	Public       bool   `json:"public"`
	AllowSelfSet bool   `json:"allow_self_set"`
}

// ChannelState is the getChannel answer.
type ChannelState struct {
	Channel  string `json:"channel"`
	Status   string `json:"status"` // "override" or "default"
	AllowSet bool   `json:"allowSet"`
}

// ChannelReply is the outcome of a channel call: HTTP status and JSON body.
type ChannelReply struct {
	Status int
	Body   []byte
	// Code is "" on success, else the machine error code in Body.
	Code string
	// Choice says what to do with the device's stored channel choice.
	Choice ChoiceAction
}

// ChoiceAction is what a channel call does to the server-side choice.
type ChoiceAction uint8

const (
	ChoiceKeep   ChoiceAction = iota
	ChoicePut                 // store Request.Channel
	ChoiceForget              // delete the stored choice
)

// ChoiceStore keeps devices' own channel choices; *release.Store is one.
type ChoiceStore interface {
	PutChoice(ctx context.Context, c release.Choice) error
	DeleteChoice(ctx context.Context, app, device string) error
}

var _ ChoiceStore = (*release.Store)(nil)

func channelError(code, msg string) ChannelReply {
	return ChannelReply{Status: http.StatusOK, Body: jsonwire.ErrorBody(code, msg), Code: code}
}

func appNotFound(app string) ChannelReply {
	return channelError(CodeAppNotFound, "app "+quoteShort(app)+" is not known to this server")
}

// SetChannel decides a setChannel call: the device may store the channel
// when it exists and allows self-assignment. Asking for the default public
// channel answers "unset": true so the device forgets its choice.
func SetChannel(snap *release.Snapshot, req *Request) ChannelReply {
	snap, ok := knownApp(snap, req.AppID)
	if !ok {
		return appNotFound(req.AppID)
	}
	if req.Channel == "" {
		return channelError(CodeMissingChannel, "channel is required")
	}
	ch, ok := snap.Channel(req.AppID, req.Channel)
	if !ok {
		return channelError(CodeChannelNotFound, "channel "+quoteShort(req.Channel)+" does not exist")
	}
	oldPlugin := !KeepsChannel(req.PluginVersion)
	if req.Platform != "" && ch == defaultPublic(snap, req.AppID, req.Platform) {
		rep := ChannelReply{Status: http.StatusOK, Body: okUnsetBody}
		if oldPlugin {
			rep.Choice = ChoiceForget
		}
		return rep
	}
	if !ch.AllowSelfSet {
		if ch.Public {
			return channelError(CodePublicSelfSetBlocked, "channel "+quoteShort(ch.Name)+" is public but is not the default for this device and does not allow self-assignment")
		}
		return channelError(CodeSelfSetNotAllowed, "channel "+quoteShort(ch.Name)+" does not allow devices to assign themselves")
	}
	if req.Platform != "" && !ch.PlatformEnabled(req.Platform) {
		return channelError(CodeSelfSetNotAllowed, "channel "+quoteShort(ch.Name)+" is disabled for platform "+quoteShort(req.Platform))
	}
	rep := ChannelReply{Status: http.StatusOK, Body: okBody}
	if oldPlugin {
		rep.Choice = ChoicePut
	}
	return rep
}

// GetChannel decides a getChannel call: the channel the device chose
// (defaultChannel, or the stored choice of an old plugin) when it still
// serves it, else the app's default public channel. The plugin stores the
// answer as its own defaultChannel, so an operator's pin is never
// answered: it would outlive its removal on the device. allowSet is false
// while a pin makes the device's choice moot.
func GetChannel(snap *release.Snapshot, req *Request) ChannelReply {
	snap, ok := knownApp(snap, req.AppID)
	if !ok {
		return appNotFound(req.AppID)
	}
	ch := resolveOwn(snap, req.AppID, req.Platform, requestedChannel(snap, req.AppID, req.DeviceID, req.DefaultChannel, req.PluginVersion))
	if ch == nil {
		return channelError(CodeNoChannel, "no channel serves this device")
	}
	pinned := false
	if name, ok := snap.Override(req.AppID, req.DeviceID); ok {
		_, pinned = snap.Channel(req.AppID, name)
	}
	st := ChannelState{Channel: ch.Name, Status: "override", AllowSet: !pinned}
	if ch == defaultPublic(snap, req.AppID, req.Platform) {
		st.Status = "default"
	}
	b, _ := json.Marshal(st)
	return ChannelReply{Status: http.StatusOK, Body: b}
}

// ListChannels decides a listChannels call: the channels this device may
// choose (self-assignable ones plus its default public channel), filtered
// by platform, prod/dev and emulator/device. Always a JSON array.
func ListChannels(snap *release.Snapshot, req *Request) ChannelReply {
	snap, ok := knownApp(snap, req.AppID)
	if !ok {
		return appNotFound(req.AppID)
	}
	def := defaultPublic(snap, req.AppID, req.Platform)
	out := make([]ChannelInfo, 0, 4)
	for _, c := range snap.Channels(req.AppID) {
		if !c.AllowSelfSet && c != def {
			continue
		}
		if req.Platform != "" && !c.PlatformEnabled(req.Platform) {
			continue
		}
		if (req.IsProd && !c.AllowProd) || (!req.IsProd && !c.AllowDev) {
			continue
		}
		if (req.IsEmulator && !c.AllowEmulator) || (!req.IsEmulator && !c.AllowDevice) {
			continue
		}
		out = append(out, ChannelInfo{ID: c.ID, Name: c.Name, Public: c.Public, AllowSelfSet: c.AllowSelfSet})
	}
	b, _ := json.Marshal(out)
	return ChannelReply{Status: http.StatusOK, Body: b}
}

// UnsetChannel decides an unsetChannel call, which only plugins that keep
// no channel send: forget the device's stored choice.
func UnsetChannel(snap *release.Snapshot, req *Request) ChannelReply {
	if _, ok := knownApp(snap, req.AppID); !ok {
		return appNotFound(req.AppID)
	}
	if req.DeviceID == "" {
		return ChannelReply{Status: http.StatusOK, Body: okBody}
	}
	return ChannelReply{Status: http.StatusOK, Body: okBody, Choice: ChoiceForget}
}

// ServeChannelSelf answers /channel_self: POST setChannel, PUT getChannel,
// GET listChannels, DELETE unsetChannel.
func (h *Handler) ServeChannelSelf(w http.ResponseWriter, r *http.Request) {
	var (
		req  Request
		rerr *RequestError
	)
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		body, err := h.readBody(r)
		if err != nil {
			h.channelReject(w, r, err)
			return
		}
		req, rerr = DecodeJSON(body.b)
		body.release()
	case http.MethodGet, http.MethodDelete:
		req, rerr = DecodeQuery(r.URL.Query())
		if rerr != nil && r.Method == http.MethodDelete && r.ContentLength != 0 {
			// Some clients send the info object as a DELETE body.
			body, err := h.readBody(r)
			if err != nil {
				h.channelReject(w, r, err)
				return
			}
			if len(body.b) > 0 {
				req, rerr = DecodeJSON(body.b)
			}
			body.release()
		}
	default:
		writeMethodNotAllowed(w, r, "POST, PUT, GET, DELETE")
		return
	}
	if rerr != nil {
		h.channelReject(w, r, rerr)
		return
	}
	snap := h.snapshot()
	var rep ChannelReply
	switch r.Method {
	case http.MethodPost:
		rep = SetChannel(snap, &req)
	case http.MethodPut:
		rep = GetChannel(snap, &req)
	case http.MethodGet:
		rep = ListChannels(snap, &req)
	case http.MethodDelete:
		rep = UnsetChannel(snap, &req)
	}
	if rep.Code != "" {
		h.log.Debug("channel call refused", "method", r.Method, "app", req.AppID, "error", rep.Code)
	}
	if rep.Choice != ChoiceKeep {
		rep = h.storeChoice(r.Context(), &req, rep)
	}
	writeJSON(w, rep.Status, rep.Body)
}

// storeChoice writes what a channel call decided about the device's own
// choice. Failing, it answers an error in the body rather than a 5xx or
// 429, which would make current plugins pause every call.
func (h *Handler) storeChoice(ctx context.Context, req *Request, rep ChannelReply) ChannelReply {
	if h.choices == nil {
		return rep
	}
	var err error
	switch rep.Choice {
	case ChoicePut:
		err = h.choices.PutChoice(ctx, release.Choice{AppID: req.AppID, DeviceID: req.DeviceID, Channel: req.Channel})
	case ChoiceForget:
		err = h.choices.DeleteChoice(ctx, req.AppID, req.DeviceID)
	}
	if err != nil {
		h.log.Warn("store device channel choice", "app", req.AppID, "device", req.DeviceID, "err", err)
		return channelError(CodeChoiceUnavailable, "the channel choice cannot be stored right now; retry later")
	}
	return rep
}

func (h *Handler) channelReject(w http.ResponseWriter, r *http.Request, rerr *RequestError) {
	h.log.Debug("channel call rejected", "method", r.Method, "status", rerr.Status, "error", rerr.Code, "message", rerr.Message)
	writeJSON(w, rerr.Status, rerr.Body())
}
