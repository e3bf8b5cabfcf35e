// Smoke test of the Go SDK generated from proto/ (protoc-gen-go and
// protoc-gen-go-grpc through buf.gen.yaml).
//
// Runs the administrator's cycle against a live server: list resources,
// register, inspect, rotate the secret, see a validation error with its field
// violation, delete. Exits non-zero on the first thing that is not as expected.
//
//	go run smoke.go HOST:PORT KEY ORGANIZATION
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	extappsv1 "extapps/gen/go/extapps/v1"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func check(ok bool, format string, args ...interface{}) {
	if !ok {
		fmt.Fprintf(os.Stderr, "go sdk: "+format+"\n", args...)
		os.Exit(1)
	}
}

func must(err error, what string) {
	check(err == nil, "%s: %v", what, err)
}

func main() {
	check(len(os.Args) == 4, "usage: smoke HOST:PORT KEY ORGANIZATION")
	target, key, organization := os.Args[1], os.Args[2], os.Args[3]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	conn, err := grpc.Dial(target, grpc.WithInsecure())
	must(err, "dial")
	defer conn.Close()
	client := extappsv1.NewExternalApplicationsClient(conn)

	resources, err := client.ListResources(ctx, &extappsv1.ListResourcesRequest{})
	must(err, "list resources")
	found := false
	for _, resource := range resources.GetResources() {
		found = found || resource.GetId() == "OR"
	}
	check(found, "resource OR not listed: %v", resources)

	registered, err := client.RegisterApplication(ctx, &extappsv1.RegisterApplicationRequest{
		Parent: "organizations/" + organization,
		Application: &extappsv1.Application{
			DisplayName: "Go SDK smoke",
			Type:        extappsv1.ApplicationType_APPLICATION_TYPE_CONFIDENTIAL,
			Grants: []*extappsv1.ResourceGrant{
				{Resource: "OR", ApplicationScopes: []string{"OR.Jobs.Read"}},
			},
		},
	})
	must(err, "register")
	check(strings.HasPrefix(registered.GetClientSecret(), "extapps_cs_"), "no secret at registration")
	name := registered.GetApplication().GetName()

	got, err := client.GetApplication(ctx, &extappsv1.GetApplicationRequest{Name: name})
	must(err, "get")
	fetched := got.GetApplication()
	check(fetched.GetDisplayName() == "Go SDK smoke", "display name: %q", fetched.GetDisplayName())
	check(fetched.GetType() == extappsv1.ApplicationType_APPLICATION_TYPE_CONFIDENTIAL, "type: %v", fetched.GetType())
	check(len(fetched.GetSecrets()) == 1, "secrets: %v", fetched.GetSecrets())

	rotated, err := client.GenerateApplicationSecret(ctx, &extappsv1.GenerateApplicationSecretRequest{
		Name: name, Etag: fetched.GetEtag(),
	})
	must(err, "generate secret")
	check(strings.HasPrefix(rotated.GetClientSecret(), "extapps_cs_"), "no secret on rotation")
	check(rotated.GetClientSecret() != registered.GetClientSecret(), "rotation returned the old secret")

	_, err = client.RegisterApplication(ctx, &extappsv1.RegisterApplicationRequest{
		Parent:      "organizations/" + organization,
		Application: &extappsv1.Application{Type: extappsv1.ApplicationType_APPLICATION_TYPE_CONFIDENTIAL},
	})
	refusal := status.Convert(err)
	check(refusal.Code() == codes.InvalidArgument, "nameless registration: %v", err)
	var fields []string
	for _, detail := range refusal.Details() {
		if badRequest, ok := detail.(*errdetails.BadRequest); ok {
			for _, violation := range badRequest.GetFieldViolations() {
				fields = append(fields, violation.GetField())
			}
		}
	}
	check(contains(fields, "application.display_name"), "field violations: %v", fields)

	_, err = client.DeleteApplication(ctx, &extappsv1.DeleteApplicationRequest{Name: name})
	must(err, "delete")
	_, err = client.GetApplication(ctx, &extappsv1.GetApplicationRequest{Name: name})
	check(status.Code(err) == codes.NotFound, "deleted application: %v", err)

	fmt.Println("go sdk: ok")
}

func contains(values []string, wanted string) bool {
	for _, value := range values {
		if value == wanted {
			return true
		}
	}
	return false
}
