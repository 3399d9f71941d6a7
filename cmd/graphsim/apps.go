package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/graphhook/graphhook/graphsim"
)

// defaultSecretFile is where "graphsim serve" writes the generated secret
// of the default app (mode 0600) and where token and subscribe read it.
const defaultSecretFile = "graphsim-client-secret"

// appFlag collects repeated --app ID:SECRET[:ROLE,ROLE...] flags.
type appFlag []graphsim.App

func (a *appFlag) String() string { return fmt.Sprintf("%d apps", len(*a)) }

func (a *appFlag) Set(v string) error {
	id, rest, ok := strings.Cut(v, ":")
	if !ok || id == "" {
		return errors.New("want CLIENT_ID:SECRET[:ROLE,ROLE...], e.g. my-app:my-secret:Mail.Read,User.Read.All")
	}
	secret, roles, _ := strings.Cut(rest, ":")
	if secret == "" {
		return errors.New("the secret after CLIENT_ID: is empty; certificate-only apps go in --apps-file")
	}
	app := graphsim.App{ClientID: id, Secret: secret}
	for r := range strings.SplitSeq(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			app.Roles = append(app.Roles, r)
		}
	}
	if len(app.Roles) == 0 {
		app.Roles = graphsim.AllPermissions()
	}
	*a = append(*a, app)
	return nil
}

// appFile is one entry of --apps-file.
type appFile struct {
	ClientID           string   `json:"clientId"`
	DisplayName        string   `json:"displayName"`
	Secret             string   `json:"secret"`
	Certificates       []string `json:"certificates"` // PEM files
	Roles              []string `json:"roles"`
	ServicePrincipalID string   `json:"servicePrincipalId"`
}

// readAppsFile reads a JSON list of app registrations. Its errors never
// quote the file's content (it holds secrets).
func readAppsFile(name string) ([]graphsim.App, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var entries []appFile
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("%s: not a JSON list of apps ({\"clientId\",\"secret\",\"certificates\":[\"cert.pem\"],\"roles\":[\"Mail.Read\"]})", name)
	}
	var apps []graphsim.App
	for i, e := range entries {
		app := graphsim.App{ClientID: e.ClientID, DisplayName: e.DisplayName, Secret: e.Secret, Roles: e.Roles, ServicePrincipalID: e.ServicePrincipalID}
		if e.Roles == nil {
			app.Roles = graphsim.AllPermissions()
		}
		for _, f := range e.Certificates {
			cert, err := readPEMCertificate(f)
			if err != nil {
				return nil, fmt.Errorf("%s: app %d: %w", name, i, err)
			}
			app.Certificates = append(app.Certificates, cert)
		}
		apps = append(apps, app)
	}
	return apps, nil
}

func readPEMCertificate(name string) (*x509.Certificate, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", name)
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}
