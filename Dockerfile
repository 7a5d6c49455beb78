# The operator image: one static binary that is both the manager and the clone step, the
# flowci CLI, whose `ui --in-cluster` is the read-only web view of config/ui, and
# flowci-mask, which steps that ask for Secrets run under (docs/secrets.md).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/flow-ci ./cmd/manager && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/flowci ./cmd/flowci && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/flowci-mask ./cmd/flowci-mask

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/flow-ci /flow-ci
COPY --from=build /out/flowci /flowci
COPY --from=build /out/flowci-mask /flowci-mask
USER 65532:65532
ENTRYPOINT ["/flow-ci"]
