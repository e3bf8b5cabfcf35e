// Sequential latency of each unary RPC through the generated Go SDK
// (grpc-go), as a Go service would call it: one ClientConn, per-call metadata.
//
// Reads EXTAPPS_URL, EXTAPPS_{ADMIN,INTROSPECT,SIGNIN}_KEY,
// EXTAPPS_ORGANIZATION and EXTAPPS_ROUNDS; prints `go RPC MICROS` per call.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	extappsv1 "extapps/gen/go/extapps/v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

const redirect = "http://127.0.0.1/callback"

var (
	baseURL = strings.TrimSuffix(os.Getenv("EXTAPPS_URL"), "/")
	parent  = "organizations/" + os.Getenv("EXTAPPS_ORGANIZATION")
	// Redirects are the answer under test, not something to follow.
	web = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
)

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "go latency client: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func keyed(variable string) context.Context {
	key := os.Getenv(variable)
	if key == "" {
		must(fmt.Errorf("not set"), variable)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// timed runs one unary call under a deadline and prints its wall time.
func timed[T any](rpc string, key context.Context, call func(context.Context) (T, error)) T {
	ctx, cancel := context.WithTimeout(key, 30*time.Second)
	defer cancel()
	start := time.Now()
	response, err := call(ctx)
	micros := time.Since(start).Microseconds()
	must(err, rpc)
	fmt.Printf("go %s %d\n", rpc, micros)
	return response
}

func accessToken(clientID, secret string) string {
	request, err := http.NewRequest("POST", baseURL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	must(err, "token request")
	request.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	request.SetBasicAuth(clientID, secret)
	response, err := web.Do(request)
	must(err, "token endpoint")
	defer response.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	must(json.NewDecoder(response.Body).Decode(&body), "token response")
	if response.StatusCode != http.StatusOK || body.AccessToken == "" {
		must(fmt.Errorf("status %d", response.StatusCode), "token endpoint")
	}
	return body.AccessToken
}

func authorizationRequest(clientID string) string {
	query := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"OR.Jobs"}, "state": {"s1"},
	}
	response, err := web.Get(baseURL + "/oauth2/authorize?" + query.Encode())
	must(err, "authorize")
	response.Body.Close()
	if response.StatusCode != http.StatusSeeOther {
		must(fmt.Errorf("status %d", response.StatusCode), "authorize")
	}
	location, err := response.Location()
	must(err, "authorize location")
	id := location.Query().Get("authorization_request")
	if id == "" {
		must(fmt.Errorf("no authorization_request in %s", location), "authorize")
	}
	return "authorizationRequests/" + id
}

func randomHex() string {
	buffer := make([]byte, 4)
	_, err := rand.Read(buffer)
	must(err, "random")
	return hex.EncodeToString(buffer)
}

func cycle(client extappsv1.ExternalApplicationsClient, admin, introspect, signin context.Context, round int) {
	timed("ListResources", admin, func(ctx context.Context) (*extappsv1.ListResourcesResponse, error) {
		return client.ListResources(ctx, &extappsv1.ListResourcesRequest{})
	})
	registered := timed("RegisterApplication", admin, func(ctx context.Context) (*extappsv1.RegisterApplicationResponse, error) {
		return client.RegisterApplication(ctx, &extappsv1.RegisterApplicationRequest{
			Parent: parent,
			Application: &extappsv1.Application{
				DisplayName: fmt.Sprintf("latency go %d %s", round, randomHex()),
				Type:        extappsv1.ApplicationType_APPLICATION_TYPE_CONFIDENTIAL,
				Grants: []*extappsv1.ResourceGrant{{
					Resource: "OR", UserScopes: []string{"OR.Jobs"}, ApplicationScopes: []string{"OR.Jobs.Read"},
				}},
				RedirectUrls: []string{redirect},
			},
		})
	}).GetApplication()
	name, clientID := registered.GetName(), registered.GetClientId()
	timed("GetApplication", admin, func(ctx context.Context) (*extappsv1.GetApplicationResponse, error) {
		return client.GetApplication(ctx, &extappsv1.GetApplicationRequest{Name: name})
	})
	timed("ListApplications", admin, func(ctx context.Context) (*extappsv1.ListApplicationsResponse, error) {
		return client.ListApplications(ctx, &extappsv1.ListApplicationsRequest{Parent: parent, PageSize: 10})
	})
	timed("UpdateApplication", admin, func(ctx context.Context) (*extappsv1.UpdateApplicationResponse, error) {
		return client.UpdateApplication(ctx, &extappsv1.UpdateApplicationRequest{
			Application: &extappsv1.Application{Name: name, DisplayName: registered.GetDisplayName() + " renamed"},
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
		})
	})
	timed("UpdateApplicationScopes", admin, func(ctx context.Context) (*extappsv1.UpdateApplicationScopesResponse, error) {
		return client.UpdateApplicationScopes(ctx, &extappsv1.UpdateApplicationScopesRequest{
			Name: name,
			Grants: []*extappsv1.ResourceGrant{{
				Resource:          "OR",
				UserScopes:        []string{"OR.Jobs", "OR.Queues"},
				ApplicationScopes: []string{"OR.Jobs.Read", "OR.Queues"},
			}},
		})
	})
	secret := timed("GenerateApplicationSecret", admin, func(ctx context.Context) (*extappsv1.GenerateApplicationSecretResponse, error) {
		return client.GenerateApplicationSecret(ctx, &extappsv1.GenerateApplicationSecretRequest{Name: name})
	}).GetClientSecret()

	token := accessToken(clientID, secret)
	introspection := timed("IntrospectToken", introspect, func(ctx context.Context) (*extappsv1.IntrospectTokenResponse, error) {
		return client.IntrospectToken(ctx, &extappsv1.IntrospectTokenRequest{Token: token})
	})
	if !introspection.GetActive() {
		must(fmt.Errorf("a fresh access token is not active"), "IntrospectToken")
	}

	request := authorizationRequest(clientID)
	timed("GetAuthorizationRequest", signin, func(ctx context.Context) (*extappsv1.GetAuthorizationRequestResponse, error) {
		return client.GetAuthorizationRequest(ctx, &extappsv1.GetAuthorizationRequestRequest{Name: request})
	})
	subject := "user-" + strconv.Itoa(round)
	timed("AcceptAuthorizationRequest", signin, func(ctx context.Context) (*extappsv1.AcceptAuthorizationRequestResponse, error) {
		return client.AcceptAuthorizationRequest(ctx, &extappsv1.AcceptAuthorizationRequestRequest{
			Name: request, Subject: subject, Scopes: []string{"OR.Jobs"},
		})
	})
	declined := authorizationRequest(clientID)
	timed("RejectAuthorizationRequest", signin, func(ctx context.Context) (*extappsv1.RejectAuthorizationRequestResponse, error) {
		return client.RejectAuthorizationRequest(ctx, &extappsv1.RejectAuthorizationRequestRequest{Name: declined})
	})
	timed("ListUserAuthorizations", signin, func(ctx context.Context) (*extappsv1.ListUserAuthorizationsResponse, error) {
		return client.ListUserAuthorizations(ctx, &extappsv1.ListUserAuthorizationsRequest{Subject: subject})
	})
	timed("RevokeUserAuthorization", signin, func(ctx context.Context) (*extappsv1.RevokeUserAuthorizationResponse, error) {
		return client.RevokeUserAuthorization(ctx, &extappsv1.RevokeUserAuthorizationRequest{
			Subject: subject, Application: name,
		})
	})

	timed("ListAuditEvents", admin, func(ctx context.Context) (*extappsv1.ListAuditEventsResponse, error) {
		return client.ListAuditEvents(ctx, &extappsv1.ListAuditEventsRequest{Parent: parent, PageSize: 10})
	})
	timed("DeleteApplication", admin, func(ctx context.Context) (*extappsv1.DeleteApplicationResponse, error) {
		return client.DeleteApplication(ctx, &extappsv1.DeleteApplicationRequest{Name: name})
	})
}

func main() {
	rounds, err := strconv.Atoi(os.Getenv("EXTAPPS_ROUNDS"))
	must(err, "EXTAPPS_ROUNDS")
	target, err := url.Parse(baseURL)
	must(err, "EXTAPPS_URL")
	admin, introspect, signin := keyed("EXTAPPS_ADMIN_KEY"), keyed("EXTAPPS_INTROSPECT_KEY"), keyed("EXTAPPS_SIGNIN_KEY")

	// grpc-go 1.33 (Debian's GOPATH sources) predates insecure.NewCredentials.
	conn, err := grpc.Dial(target.Host, grpc.WithInsecure())
	must(err, "dial")
	defer conn.Close()
	client := extappsv1.NewExternalApplicationsClient(conn)

	// Opens the connection, so that no timed call pays for it.
	warmup, cancel := context.WithTimeout(admin, 30*time.Second)
	_, err = client.ListResources(warmup, &extappsv1.ListResourcesRequest{})
	cancel()
	must(err, "warm-up")
	for round := 1; round <= rounds; round++ {
		cycle(client, admin, introspect, signin, round)
	}
}
