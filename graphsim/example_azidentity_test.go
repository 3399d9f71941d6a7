package graphsim_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/graphhook/graphhook/graphsim"
)

// ExampleSim_StartTLS points Azure's identity library at the simulator:
// only the authority host, the CA (through the transport) and instance
// discovery differ from production. The token then creates a subscription
// as any Graph client would; the app has Mail.Read only, so messages work
// and events are Graph's 403.
func ExampleSim_StartTLS() {
	ctx := context.Background()
	sim, err := graphsim.New(graphsim.Config{Apps: []graphsim.App{
		{ClientID: "my-app", Secret: "my-secret", Roles: []string{"Mail.Read"}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	base, pool, err := sim.StartTLS("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cred, err := azidentity.NewClientSecretCredential(graphsim.DefaultTenantID, "my-app", "my-secret",
		&azidentity.ClientSecretCredentialOptions{
			ClientOptions: azcore.ClientOptions{
				Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: base + "/"},
				Transport: client,
			},
			// MSAL asks login.microsoftonline.com about hosts it does not know.
			DisableInstanceDiscovery: true,
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		fmt.Println(err)
		return
	}

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.URL.Query().Get("validationToken"))
	}))
	defer receiver.Close()
	create := func(resource string) int {
		body, _ := json.Marshal(graphsim.SubscriptionRequest{
			ChangeType: "created", NotificationURL: receiver.URL, Resource: resource,
			ExpirationDateTime: time.Now().Add(time.Hour), ClientState: "a-secret",
		})
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1.0/subscriptions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println("messages:", create("users/alex@contoso.com/messages"))
	fmt.Println("events:", create("users/alex@contoso.com/events"))
	// Output:
	// messages: 201
	// events: 403
}
