// Package service is the build service's HTTP API under /api/v1: it takes
// build requests, keeps them as records, runs them through a queue and
// streams their logs.
//
//	POST /api/v1/builds              submit (JSON, or multipart: a "request" part, then an "archive" part)
//	GET  /api/v1/builds              list, newest first (?state=&package=&source=&cursor=&limit=)
//	GET  /api/v1/builds/{id}         one record
//	POST /api/v1/builds/{id}/cancel  cancel a queued or running build
//	POST /api/v1/builds/{id}/retry   a new build of the same inputs, linked to the old one
//	GET  /api/v1/builds/{id}/log     the log as text, or live as server-sent events
//	POST /api/v1/sources             upload a tar.gz source: {"upload": ID}
//
// What it stores, fetches and builds with comes in through small interfaces
// (Records, Sources, Runner) that the server wires to internal/records,
// internal/source and internal/request.
package service
