package subscriptions

import (
	"errors"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credential kinds of CredentialConfig.Kind.
const (
	CredentialClientSecret      = "client-secret"
	CredentialClientCertificate = "client-certificate"
	CredentialManagedIdentity   = "managed-identity"
	CredentialWorkloadIdentity  = "workload-identity"
)

// CredentialConfig describes how the application signs in to Microsoft
// Entra ID. It is the small configuration a daemon maps flags onto; for
// anything else build an azidentity credential yourself.
type CredentialConfig struct {
	// Kind is client-secret, client-certificate, managed-identity or
	// workload-identity. Default: client-certificate when
	// CertificateFile or Certificate is set, client-secret when
	// ClientSecret is set, workload-identity when TokenFile is set, else
	// managed-identity. (Set workload-identity explicitly to let azidentity
	// read AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE,
	// as AKS sets them.)
	Kind string
	// TenantID is the directory (tenant) id. Required for client-secret and
	// client-certificate; workload identity defaults to AZURE_TENANT_ID.
	TenantID string
	// ClientID is the application (client) id. Required for client-secret
	// and client-certificate; for managed identity it selects a
	// user-assigned identity (default: the system-assigned one).
	ClientID string
	// ClientSecret is the application's client secret (client-secret).
	ClientSecret string
	// Certificate is a PEM or PKCS#12 certificate with its private key
	// (client-certificate); CertificateFile reads it from a file instead.
	Certificate     []byte
	CertificateFile string
	// CertificatePassword decrypts a PKCS#12 Certificate. Default none.
	CertificatePassword string
	// TokenFile is the federated token file of workload identity. Default
	// AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string
	// Cloud picks the authority host when AuthorityHost is empty. Default
	// CloudGlobal.
	Cloud Cloud
	// AuthorityHost is the Microsoft Entra ID authority, e.g.
	// "https://login.microsoftonline.us/" or a graphsim's URL. Setting it
	// also disables instance discovery (which only knows Microsoft's hosts).
	// Default Cloud.AuthorityHost().
	AuthorityHost string
	// Transport sends the token requests; an *http.Client works (tests give
	// one that trusts their TLS server). Default: azcore's.
	Transport policy.Transporter
}

// NewCredential returns the azidentity credential cfg describes.
func NewCredential(cfg CredentialConfig) (azcore.TokenCredential, error) {
	kind := cfg.Kind
	if kind == "" {
		switch {
		case cfg.CertificateFile != "" || len(cfg.Certificate) > 0:
			kind = CredentialClientCertificate
		case cfg.ClientSecret != "":
			kind = CredentialClientSecret
		case cfg.TokenFile != "":
			kind = CredentialWorkloadIdentity
		default:
			kind = CredentialManagedIdentity
		}
	}
	custom := cfg.AuthorityHost != ""
	host := cfg.AuthorityHost
	if host == "" {
		host = cfg.Cloud.AuthorityHost()
	}
	opts := azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: host, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}}
	if cfg.Transport != nil {
		opts.Transport = cfg.Transport
	}
	need := func(field, v string) error {
		if v == "" {
			return &ConfigError{Field: "Credential." + field, Err: fmt.Errorf("%w for %s", ErrRequired, kind)}
		}
		return nil
	}
	switch kind {
	case CredentialClientSecret:
		if err := errors.Join(need("TenantID", cfg.TenantID), need("ClientID", cfg.ClientID), need("ClientSecret", cfg.ClientSecret)); err != nil {
			return nil, err
		}
		return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom})
	case CredentialClientCertificate:
		if err := errors.Join(need("TenantID", cfg.TenantID), need("ClientID", cfg.ClientID)); err != nil {
			return nil, err
		}
		data := cfg.Certificate
		if len(data) == 0 {
			if cfg.CertificateFile == "" {
				return nil, &ConfigError{Field: "Credential.CertificateFile", Err: fmt.Errorf("%w for %s", ErrRequired, kind)}
			}
			var err error
			if data, err = os.ReadFile(cfg.CertificateFile); err != nil {
				return nil, &ConfigError{Field: "Credential.CertificateFile", Err: fmt.Errorf("%w: %v", ErrBadValue, err)}
			}
		}
		var pw []byte
		if cfg.CertificatePassword != "" {
			pw = []byte(cfg.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			// azidentity's parse errors carry no key material.
			return nil, &ConfigError{Field: "Credential.Certificate", Err: fmt.Errorf("%w: %v", ErrBadValue, err)}
		}
		return azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom, SendCertificateChain: true})
	case CredentialWorkloadIdentity:
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFile, DisableInstanceDiscovery: custom,
		})
	case CredentialManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if cfg.ClientID != "" {
			mo.ID = azidentity.ClientID(cfg.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(mo)
	}
	return nil, &ConfigError{Field: "Credential.Kind", Err: fmt.Errorf("%w: %q is not client-secret, client-certificate, managed-identity or workload-identity", ErrBadValue, kind)}
}
