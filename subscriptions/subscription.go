package subscriptions

import (
	"log/slog"
	"time"
)

// Subscription is a Microsoft Graph change-notification subscription, in
// Graph's JSON shape. In a create request, leave the read-only fields (ID,
// ApplicationID, CreatorID) empty.
type Subscription struct {
	ID                        string    `json:"id,omitempty"`
	Resource                  string    `json:"resource"`
	ChangeType                string    `json:"changeType"`
	NotificationURL           string    `json:"notificationUrl"`
	LifecycleNotificationURL  string    `json:"lifecycleNotificationUrl,omitempty"`
	ExpirationDateTime        time.Time `json:"expirationDateTime,omitzero"`
	ClientState               string    `json:"clientState,omitempty"`
	IncludeResourceData       bool      `json:"includeResourceData,omitempty"`
	EncryptionCertificate     string    `json:"encryptionCertificate,omitempty"`
	EncryptionCertificateID   string    `json:"encryptionCertificateId,omitempty"`
	LatestSupportedTLSVersion string    `json:"latestSupportedTlsVersion,omitempty"`
	NotificationURLAppID      string    `json:"notificationUrlAppId,omitempty"`
	ApplicationID             string    `json:"applicationId,omitempty"`
	CreatorID                 string    `json:"creatorId,omitempty"`
}

// LogValue implements [slog.LogValuer] without the clientState or the
// certificate.
func (s Subscription) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subscription_id", s.ID),
		slog.String("resource", s.Resource),
		slog.String("change_type", s.ChangeType),
		slog.Time("expiration", s.ExpirationDateTime),
		slog.Bool("rich", s.IncludeResourceData),
	)
}

// Update is the body of PATCH /subscriptions/{id}. Nil fields are left
// unchanged. A new ExpirationDateTime renews the subscription and also
// reauthorizes it.
type Update struct {
	ExpirationDateTime      *time.Time `json:"expirationDateTime,omitempty"`
	NotificationURL         *string    `json:"notificationUrl,omitempty"`
	EncryptionCertificate   *string    `json:"encryptionCertificate,omitempty"`
	EncryptionCertificateID *string    `json:"encryptionCertificateId,omitempty"`
}
