package aggregate

// Preset names the permissions of one of the roles the SDK's dashboards
// offer, so that a backend need not assemble [Permissions] by hand:
//
//	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "bob", Permissions: aggregate.PresetViewer.Permissions()})
//
// Its value is the role's name as the replay tool prints it.
type Preset string

// The presets.
const (
	// PresetHost may come on stage directly and decides for others: lists,
	// grants and denies requests, invites, kicks, bans, configures.
	PresetHost Preset = "host"
	// PresetSpeaker may come on stage directly (Join needs no approval),
	// and decides for nobody else.
	PresetSpeaker Preset = "speaker"
	// PresetViewer may ask to come on stage (RequestAccess) and joins once
	// a host accepts or invites them.
	PresetViewer Preset = "viewer"
	// PresetViewOnly may not come on stage at all: no request, no
	// invitation, no join.
	PresetViewOnly Preset = "view-only"
)

// Permissions returns the preset's permissions; for a name that is none of
// the presets, the zero Permissions, which every command refuses with
// ErrInvalidCommand (its StageAccess is not a defined value).
func (p Preset) Permissions() Permissions {
	switch p {
	case PresetHost:
		return Permissions{StageAccess: Allowed, AcceptStageRequests: true}
	case PresetSpeaker:
		return Permissions{StageAccess: Allowed}
	case PresetViewer:
		return Permissions{StageAccess: CanRequest}
	case PresetViewOnly:
		return Permissions{StageAccess: NotAllowed}
	}
	return Permissions{}
}

// PresetOf returns the preset that p is, or is closest to: PresetHost for
// any host (AcceptStageRequests, whatever its own stage access), else by
// StageAccess: PresetSpeaker (Allowed), PresetViewer (CanRequest),
// PresetViewOnly (NotAllowed); "" for permissions that are not valid.
// It is exact (PresetOf(p).Permissions() == p) for every valid p but a
// host whose own stage access is not Allowed.
func PresetOf(p Permissions) Preset {
	switch {
	case p.Validate() != nil:
		return ""
	case p.AcceptStageRequests:
		return PresetHost
	case p.StageAccess == Allowed:
		return PresetSpeaker
	case p.StageAccess == CanRequest:
		return PresetViewer
	}
	return PresetViewOnly
}
