package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

func TestAppFlag(t *testing.T) {
	tests := []struct {
		name      string
		value     string
		wantErr   string
		wantRoles []string
	}{
		{"with roles", "app-1:s3cret:Mail.Read,Calendars.Read", "", []string{"Mail.Read", "Calendars.Read"}},
		{"every permission by default", "app-2:s3cret", "", graphsim.AllPermissions()},
		{"no secret", "app-3", "CLIENT_ID:SECRET", nil},
		{"empty secret", "app-4::Mail.Read", "secret after CLIENT_ID: is empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f appFlag
			err := f.Set(tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Error("error quotes the secret")
				}
				return
			}
			if err != nil || len(f) != 1 || f[0].Secret != "s3cret" || !slices.Equal(f[0].Roles, tc.wantRoles) {
				t.Fatalf("%+v %v", f, err)
			}
		})
	}
}

func TestAppsFile(t *testing.T) {
	dir := t.TempDir()
	cert, _ := testkit.ClientCert(t, "app")
	certFile := filepath.Join(dir, "app.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	good := filepath.Join(dir, "apps.json")
	os.WriteFile(good, []byte(`[{"clientId":"a","secret":"top-secret","roles":["Mail.Read"]},{"clientId":"b","certificates":[`+strconv.Quote(certFile)+`]}]`), 0o600)
	apps, err := readAppsFile(good)
	if err != nil || len(apps) != 2 || apps[0].Secret != "top-secret" || len(apps[1].Certificates) != 1 || len(apps[1].Roles) == 0 {
		t.Fatalf("%+v %v", apps, err)
	}
	if _, err := graphsim.New(graphsim.Config{Apps: apps, SweepInterval: -1}); err != nil {
		t.Errorf("the apps do not register: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"clientId":"a","secret":"top-secret"`), 0o600)
	if _, err := readAppsFile(bad); err == nil || strings.Contains(err.Error(), "top-secret") {
		t.Errorf("malformed file: %v (must fail without quoting it)", err)
	}
}
