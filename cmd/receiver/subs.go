package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// subsSection is the "subscriptions:" section of the config file: the
// Graph credentials of the subscription manager and the subscriptions it
// keeps alive. Its keys are Graph's camelCase names. Secrets come from
// files or the environment, never from the file itself.
type subsSection struct {
	// TenantID and ClientID are the directory (tenant) and application
	// (client) ids the manager signs in with.
	TenantID string `koanf:"tenantId"`
	ClientID string `koanf:"clientId"`
	// Credential is client-secret, client-certificate, managed-identity or
	// workload-identity. Default: from the fields given (see
	// subscriptions.CredentialConfig.Kind).
	Credential string `koanf:"credential"`
	// ClientSecretFile holds the client secret (or GRAPHHOOK_GRAPH_CLIENT_SECRET).
	ClientSecretFile string `koanf:"clientSecretFile"`
	// CertificateFile is a PEM or PKCS#12 file with the app's certificate
	// and key; CertificatePasswordFile (or
	// GRAPHHOOK_GRAPH_CERTIFICATE_PASSWORD) decrypts a PKCS#12 one.
	CertificateFile         string `koanf:"certificateFile"`
	CertificatePasswordFile string `koanf:"certificatePasswordFile"`
	// TokenFile is workload identity's federated token file. Default
	// AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string `koanf:"tokenFile"`
	// Cloud is global, usgov, usgovdod or china. Default global.
	Cloud string `koanf:"cloud"`
	// AuthorityHost and GraphURL override the cloud's Entra ID authority
	// and Graph v1.0 URL (graphsim: its https URL, and that plus /v1.0).
	AuthorityHost string `koanf:"authorityHost"`
	GraphURL      string `koanf:"graphUrl"`
	// CAFile is a PEM file of roots trusted, in addition to the system's,
	// for the authority and Graph (graphsim's CA).
	CAFile string `koanf:"caFile"`
	// LeaseTTL is how long the replicas are without a renewer after the
	// holder dies. Default 30s.
	LeaseTTL time.Duration `koanf:"leaseTtl"`
	// Desired are the subscriptions to keep alive.
	Desired []subsSpec `koanf:"desired"`
}

// subsSpec is one desired subscription (subscriptions.Spec).
type subsSpec struct {
	Resource                 string        `koanf:"resource"`
	ChangeType               string        `koanf:"changeType"`
	NotificationURL          string        `koanf:"notificationUrl"`
	LifecycleNotificationURL string        `koanf:"lifecycleNotificationUrl"`
	IncludeResourceData      bool          `koanf:"includeResourceData"`
	ClientState              string        `koanf:"clientState"`
	ClientStateFile          string        `koanf:"clientStateFile"`
	MaxLifetime              time.Duration `koanf:"maxLifetime"`
}

// subsDecodeText describes why the subscriptions section cannot be read:
// the keys involved, never a value (a clientState may be among them).
func subsDecodeText(err error) string {
	var keys []string
	var walk func(error)
	walk = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			keys = append(keys, "subscriptions."+de.Name())
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e := errors.Unwrap(err); e != nil {
			walk(e)
		}
	}
	walk(err)
	if len(keys) == 0 {
		return "has keys the section does not know, or a list or map where one value belongs (the keys are tenantId, clientId, credential, clientSecretFile, certificateFile, certificatePasswordFile, tokenFile, cloud, authorityHost, graphUrl, caFile, leaseTtl, desired; example: see \"Keeping subscriptions alive\" in the README)"
	}
	return fmt.Sprintf("%s: wrong kind of value (a duration such as 48h, true or false, or one text value; example: see \"Keeping subscriptions alive\" in the README)", strings.Join(keys, ", "))
}
