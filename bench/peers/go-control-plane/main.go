// A reference xDS control plane for the benchmark, written the way go-control-plane's users
// write one: a SnapshotCache (ADS) served by server.NewServer, fed from the same catalog file
// the bench writes for lucid-mesh, emitting the resources lucid-mesh emits for it with
// `--mtls off --auth none` (see test/translate/cases/basic-http).
//
//	--peer-mode per-node  one snapshot per node id (cache.IDHash), rebuilt for every node on
//	                      every catalog change: the usual way, since each sidecar has its own
//	                      inbound listener and local app cluster
//	--peer-mode shared    one snapshot for every proxy (a constant node hash): go-control-plane's
//	                      best case; the per-proxy inbound listener and local app cluster are
//	                      left out, since one snapshot cannot carry them
//
// The harness talks to it over stdio: JSON lines on stdout (events and replies, times in ms of
// CLOCK_MONOTONIC, the clock the bench's Node processes read), commands on stdin ("stats ID",
// "gc ID", "stop"). CPU and RSS are read by the harness from /proc, not reported here.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
)

type config struct {
	catalog      string
	host         string
	port         int
	mode         string
	outboundPort uint32
	dnsPort      uint32
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("gcp-peer", flag.ContinueOnError)
	c := config{}
	fs.StringVar(&c.catalog, "catalog", "", "catalog file (JSON, as bench/catalog.ts writes it), watched for changes")
	fs.StringVar(&c.host, "host", "127.0.0.1", "address the ADS server listens on")
	fs.IntVar(&c.port, "port", 0, "ADS port (0: any free port, reported in the ready event)")
	fs.StringVar(&c.mode, "peer-mode", "per-node", "per-node (one snapshot per node id) or shared (one snapshot for all)")
	outbound := fs.Uint("outbound-port", 15001, "port of the shared outbound listener (as the sidecars' outbound_port)")
	dns := fs.Uint("dns-port", 15053, "port of the sidecars' DNS listener (lucid-mesh's default dns_port; 0: none)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.outboundPort = uint32(*outbound)
	c.dnsPort = uint32(*dns)
	switch {
	case c.catalog == "":
		return c, errors.New("--catalog: required")
	case c.mode != "per-node" && c.mode != "shared":
		return c, fmt.Errorf("--peer-mode: expected per-node or shared, got %q", c.mode)
	case c.port < 0 || c.port > 65535:
		return c, fmt.Errorf("--port: expected 0..65535, got %d", c.port)
	case *outbound == 0 || *outbound > 65535:
		return c, fmt.Errorf("--outbound-port: expected 1..65535, got %d", *outbound)
	case *dns > 65535:
		return c, fmt.Errorf("--dns-port: expected 0..65535, got %d", *dns)
	}
	return c, nil
}

// nowMs: CLOCK_MONOTONIC in ms, as Node's process.hrtime reads it.
func nowMs() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
}

var stdoutMu sync.Mutex

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	stdoutMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	stdoutMu.Unlock()
}

func fatal(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	emit(map[string]any{"ev": "failed", "message": msg})
	fmt.Fprintln(os.Stderr, "gcp-peer:", msg)
	os.Exit(1)
}

// sharedHash puts every proxy in one snapshot group.
type sharedHash struct{}

func (sharedHash) ID(*core.Node) string { return "shared" }

// peer holds the cache, the current catalog and the nodes seen so far.
type peer struct {
	cfg   config
	cache cache.SnapshotCache

	mu      sync.Mutex
	catalog *catalog
	shared  *sharedResources
	nodes   map[string]bool
	seq     int

	// Counters the harness reads (as lucid-mesh's /metrics counts them).
	responses, responseBytes, acks, nacks      atomic.Int64
	streamsOpened, streamsClosed, snapshotsSet atomic.Int64
	snapshotsBuilt                             atomic.Int64
}

// snapshotFor builds one node's snapshot (per-node) or the shared one (node == "").
func (p *peer) snapshotFor(node string) (*cache.Snapshot, error) {
	sh := p.shared
	clusters, listeners := sh.clusters, sh.listeners
	own := ""
	if inst := p.catalog.instance(node); inst != nil && inst.meshed() {
		clusters = append(append([]types.Resource{}, clusters...), localAppCluster(inst))
		listeners = append(append([]types.Resource{}, listeners...), inboundListener(inst))
		own = fmt.Sprintf("|%s:%d:%d", inst.ID, inst.Port, inst.SidecarPort)
	}
	snap, err := cache.NewSnapshot(sh.version, map[resource.Type][]types.Resource{
		resource.ClusterType:  clusters,
		resource.EndpointType: sh.endpoints,
		resource.ListenerType: listeners,
		resource.RouteType:    sh.routes,
	})
	if err != nil {
		return nil, err
	}
	// One version per type, from what the type is made of: a flip changes the endpoints only,
	// so only EDS is sent again (one version for the whole snapshot would resend every type).
	snap.Resources[types.Cluster].Version = sh.clusterVersion + own
	snap.Resources[types.Listener].Version = sh.listenerVersion + own
	snap.Resources[types.Route].Version = sh.routeVersion
	snap.Resources[types.Endpoint].Version = sh.version
	return snap, nil
}

func (p *peer) setNode(ctx context.Context, node string) error {
	key := node
	if p.cfg.mode == "shared" {
		key = "shared"
		node = ""
	}
	snap, err := p.snapshotFor(node)
	if err != nil {
		return err
	}
	p.snapshotsSet.Add(1)
	return p.cache.SetSnapshot(ctx, key, snap)
}

// reload reads the catalog file and sets every known node's snapshot.
func (p *peer) reload(ctx context.Context, sourceAt float64) error {
	text, err := os.ReadFile(p.cfg.catalog)
	if err != nil {
		return err
	}
	cat, err := parseCatalog(text)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	buildStartedAt := nowMs()
	p.seq++
	p.catalog = cat
	p.shared = buildShared(cat, p.cfg.outboundPort, p.cfg.dnsPort, fmt.Sprintf("v%d", p.seq))
	p.snapshotsBuilt.Add(1)
	builtAt := nowMs()
	nodes := 0
	if p.cfg.mode == "shared" {
		if err := p.setNode(ctx, ""); err != nil {
			return err
		}
		nodes = 1
	} else {
		for node := range p.nodes {
			if err := p.setNode(ctx, node); err != nil {
				return err
			}
			nodes++
		}
	}
	emit(map[string]any{
		"ev": "snapshot", "version": p.shared.version, "sourceAt": sourceAt,
		"buildStartedAt": buildStartedAt, "builtAt": builtAt, "notifiedAt": nowMs(),
		"snapshots": nodes,
	})
	return nil
}

// seen gives a node its snapshot on its first request (per-node mode), before the cache
// looks for one, so its first watch is answered at once.
func (p *peer) seen(ctx context.Context, node *core.Node) error {
	if p.cfg.mode == "shared" || node == nil || node.GetId() == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodes[node.GetId()] {
		return nil
	}
	p.nodes[node.GetId()] = true
	return p.setNode(ctx, node.GetId())
}

func (p *peer) callbacks(ctx context.Context) server.Callbacks {
	return server.CallbackFuncs{
		StreamOpenFunc: func(context.Context, int64, string) error {
			p.streamsOpened.Add(1)
			return nil
		},
		StreamClosedFunc: func(int64, *core.Node) { p.streamsClosed.Add(1) },
		DeltaStreamOpenFunc: func(context.Context, int64, string) error {
			p.streamsOpened.Add(1)
			return nil
		},
		DeltaStreamClosedFunc: func(int64, *core.Node) { p.streamsClosed.Add(1) },
		StreamRequestFunc: func(_ int64, req *discovery.DiscoveryRequest) error {
			if req.GetResponseNonce() != "" {
				if req.GetErrorDetail() != nil {
					p.nacks.Add(1)
				} else {
					p.acks.Add(1)
				}
			}
			return p.seen(ctx, req.GetNode())
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discovery.DiscoveryRequest, res *discovery.DiscoveryResponse) {
			p.responses.Add(1)
			p.responseBytes.Add(int64(proto.Size(res)))
		},
		StreamDeltaRequestFunc: func(_ int64, req *discovery.DeltaDiscoveryRequest) error {
			if req.GetResponseNonce() != "" {
				if req.GetErrorDetail() != nil {
					p.nacks.Add(1)
				} else {
					p.acks.Add(1)
				}
			}
			return p.seen(ctx, req.GetNode())
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discovery.DeltaDiscoveryRequest, res *discovery.DeltaDiscoveryResponse) {
			p.responses.Add(1)
			p.responseBytes.Add(int64(proto.Size(res)))
		},
	}
}

func (p *peer) stats(id string) map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	opened, closed := p.streamsOpened.Load(), p.streamsClosed.Load()
	return map[string]any{
		"ev": "reply", "id": id, "at": nowMs(),
		"responses": p.responses.Load(), "responseBytes": p.responseBytes.Load(),
		"acks": p.acks.Load(), "nacks": p.nacks.Load(),
		"snapshotsBuilt": p.snapshotsBuilt.Load(), "snapshotsSet": p.snapshotsSet.Load(),
		"streamsOpened": opened, "streamsClosed": closed, "connected": opened - closed,
		"heapUsed": ms.HeapAlloc, "heapTotal": ms.HeapSys, "goroutines": runtime.NumGoroutine(),
	}
}

// watch reloads the catalog whenever the file is replaced or written (the bench replaces it
// with write + rename, so the directory is watched, as editors and ConfigMaps require).
func (p *peer) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(p.cfg.catalog)
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != abs || !ev.Has(fsnotify.Create|fsnotify.Write|fsnotify.Rename) {
					continue
				}
				if _, err := os.Stat(abs); err != nil {
					continue
				}
				if err := p.reload(ctx, nowMs()); err != nil {
					fmt.Fprintln(os.Stderr, "gcp-peer: catalog not applied:", err)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				fmt.Fprintln(os.Stderr, "gcp-peer: watch:", err)
			}
		}
	}()
	return nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fatal("%v", err)
	}
	ctx := context.Background()
	var hash cache.NodeHash = cache.IDHash{}
	if cfg.mode == "shared" {
		hash = sharedHash{}
	}
	p := &peer{cfg: cfg, cache: cache.NewSnapshotCache(true, hash, nil), nodes: map[string]bool{}}
	if err := p.reload(ctx, nowMs()); err != nil {
		fatal("--catalog %s: %v", cfg.catalog, err)
	}
	if err := p.watch(ctx); err != nil {
		fatal("--catalog %s: watch: %v", cfg.catalog, err)
	}

	srv := server.NewServer(ctx, p.cache, p.callbacks(ctx))
	// As go-control-plane's example server: a high stream limit, one ADS service.
	grpcServer := grpc.NewServer(grpc.MaxConcurrentStreams(1000000))
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(grpcServer, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(grpcServer, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(grpcServer, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(grpcServer, srv)
	lis, err := net.Listen("tcp", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port)))
	if err != nil {
		fatal("--port %d: %v", cfg.port, err)
	}
	go func() {
		if err := grpcServer.Serve(lis); err != nil {
			fatal("serve: %v", err)
		}
	}()
	emit(map[string]any{"ev": "ready", "xdsPort": lis.Addr().(*net.TCPAddr).Port, "pid": os.Getpid()})

	// Commands from the harness; EOF on stdin (the harness went away) stops the peer.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		id := ""
		if len(fields) > 1 {
			id = fields[1]
		}
		switch fields[0] {
		case "stats":
			emit(p.stats(id))
		case "gc":
			// As the bench's full GC of lucid-mesh before reading memory.
			runtime.GC()
			debug.FreeOSMemory()
			time.Sleep(50 * time.Millisecond)
			emit(p.stats(id))
		case "stop":
			grpcServer.Stop()
			os.Exit(0)
		default:
			emit(map[string]any{"ev": "reply", "id": id, "error": "unknown command " + fields[0]})
		}
	}
	grpcServer.Stop()
}

// versionOf hashes the parts a type is made of into a short version string.
func versionOf(parts ...string) string {
	h := fnv.New64a()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}
