package update

import (
	"encoding/json"
	"net/http"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/update/release"
)

// Channel calls (PROTOCOL.md §4). The server only reads: the device stores
// its chosen channel itself and sends it back as defaultChannel.

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
}

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
	if req.Platform != "" && ch == defaultPublic(snap, req.AppID, req.Platform) {
		return ChannelReply{Status: http.StatusOK, Body: okUnsetBody}
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
	return ChannelReply{Status: http.StatusOK, Body: okBody}
}

// GetChannel decides a getChannel call: the channel serving the device,
// "override" when it is pinned by an operator or chosen by the device, and
// "default" when it is the app's public channel; allowSet is false when an
// operator's pin makes a device choice pointless.
func GetChannel(snap *release.Snapshot, req *Request) ChannelReply {
	snap, ok := knownApp(snap, req.AppID)
	if !ok {
		return appNotFound(req.AppID)
	}
	ch, viaOverride := resolve(snap, req.AppID, req.DeviceID, req.Platform, req.DefaultChannel)
	if ch == nil {
		return channelError(CodeNoChannel, "no channel serves this device")
	}
	st := ChannelState{Channel: ch.Name, Status: "override", AllowSet: !viaOverride}
	if !viaOverride && ch == defaultPublic(snap, req.AppID, req.Platform) {
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

// UnsetChannel decides an unsetChannel call: nothing is stored server-side,
// so it only checks the app exists.
func UnsetChannel(snap *release.Snapshot, req *Request) ChannelReply {
	if _, ok := knownApp(snap, req.AppID); !ok {
		return appNotFound(req.AppID)
	}
	return ChannelReply{Status: http.StatusOK, Body: okBody}
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
	writeJSON(w, rep.Status, rep.Body)
}

func (h *Handler) channelReject(w http.ResponseWriter, r *http.Request, rerr *RequestError) {
	h.log.Debug("channel call rejected", "method", r.Method, "status", rerr.Status, "error", rerr.Code, "message", rerr.Message)
	writeJSON(w, rerr.Status, rerr.Body())
}
