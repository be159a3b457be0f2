package main

// The catalog file and the Envoy resources made from it, shaped as lucid-mesh's translation
// shapes them without mTLS (test/translate/cases/basic-http and health): one EDS cluster, one
// ClusterLoadAssignment and one virtual host per service, one outbound listener naming the
// `outbound` route configuration, the DNS listener every sidecar gets by default (its node
// sends no dns_port: 15053, test/translate/cases/sidecar-dns); per meshed proxy an inbound
// listener and a local app cluster.

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	dnstable "github.com/envoyproxy/go-control-plane/envoy/data/dns/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	dnsfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The mesh's DNS suffix (lucid-mesh's default), for the virtual hosts' domains.
const domainSuffix = "lucid.internal"

type instanceDoc struct {
	ID          string `json:"id"`
	Address     string `json:"address"`
	Port        uint32 `json:"port"`
	SidecarPort uint32 `json:"sidecarPort"`
	Health      string `json:"health"`
}

func (i *instanceDoc) meshed() bool { return i.SidecarPort != 0 }

type serviceDoc struct {
	Name      string        `json:"name"`
	Protocol  string        `json:"protocol"`
	Instances []instanceDoc `json:"instances"`
}

type catalog struct {
	Services []serviceDoc `json:"services"`
	byID     map[string]*instanceDoc
}

func parseCatalog(text []byte) (*catalog, error) {
	c := &catalog{}
	if err := json.Unmarshal(text, c); err != nil {
		return nil, fmt.Errorf("not a JSON catalog: %w", err)
	}
	c.byID = map[string]*instanceDoc{}
	for s := range c.Services {
		svc := &c.Services[s]
		if svc.Name == "" {
			return nil, fmt.Errorf("services[%d].name: required", s)
		}
		if svc.Protocol != "" && svc.Protocol != "http" {
			return nil, fmt.Errorf("services[%d].protocol: the peer emits HTTP services only, got %q", s, svc.Protocol)
		}
		for i := range svc.Instances {
			inst := &svc.Instances[i]
			switch inst.Health {
			case "", "passing", "warning", "critical":
			default:
				return nil, fmt.Errorf("services[%d].instances[%d].health: expected passing, warning or critical, got %q", s, i, inst.Health)
			}
			c.byID[inst.ID] = inst
		}
	}
	return c, nil
}

func (c *catalog) instance(id string) *instanceDoc {
	if c == nil || id == "" {
		return nil
	}
	return c.byID[id]
}

// sharedResources: what every proxy receives, built once per catalog change.
type sharedResources struct {
	version         string
	clusterVersion  string
	listenerVersion string
	routeVersion    string
	clusters        []types.Resource
	endpoints       []types.Resource
	listeners       []types.Resource
	routes          []types.Resource
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}

func socket(address string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       address,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func httpFilter(name string, m proto.Message) *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: name, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(m)}}
}

func hcmListener(name string, addr *core.Address, dir core.TrafficDirection, h *hcm.HttpConnectionManager) *listener.Listener {
	return &listener.Listener{
		Name:    name,
		Address: addr,
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(h)},
		}}}},
		TrafficDirection: dir,
	}
}

// dnsListener: Envoy's DNS filter on UDP 127.0.0.1:<port> answering <service>.<suffix> with
// 127.0.0.1 (A) and ::ffff:127.0.0.1 (AAAA), the other names forwarded to the sidecar's
// resolvers.
func dnsListener(port uint32, services []string) *listener.Listener {
	domains := make([]*dnstable.DnsTable_DnsVirtualDomain, 0, len(services))
	for _, name := range services {
		domains = append(domains, &dnstable.DnsTable_DnsVirtualDomain{
			Name: name + "." + domainSuffix,
			Endpoint: &dnstable.DnsTable_DnsEndpoint{EndpointConfig: &dnstable.DnsTable_DnsEndpoint_AddressList{
				AddressList: &dnstable.DnsTable_AddressList{Address: []string{"127.0.0.1", "::ffff:127.0.0.1"}},
			}},
			AnswerTtl: durationpb.New(30 * time.Second),
		})
	}
	addr := socket("127.0.0.1", port)
	addr.GetSocketAddress().Protocol = core.SocketAddress_UDP
	return &listener.Listener{
		Name:             fmt.Sprintf("dns|%d", port),
		Address:          addr,
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		ListenerFilters: []*listener.ListenerFilter{{
			Name: "envoy.filters.udp.dns_filter",
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&dnsfilter.DnsFilterConfig{
				StatPrefix: "mesh_dns",
				ServerConfig: &dnsfilter.DnsFilterConfig_ServerContextConfig{
					ConfigSource: &dnsfilter.DnsFilterConfig_ServerContextConfig_InlineDnsTable{
						InlineDnsTable: &dnstable.DnsTable{VirtualDomains: domains},
					},
				},
				ClientConfig: &dnsfilter.DnsFilterConfig_ClientContextConfig{
					ResolverTimeout:   durationpb.New(5 * time.Second),
					MaxPendingLookups: 256,
				},
			})},
		}},
	}
}

func buildShared(c *catalog, outboundPort, dnsPort uint32, version string) *sharedResources {
	sh := &sharedResources{version: version}
	names := make([]string, 0, len(c.Services))
	vhosts := make([]*route.VirtualHost, 0, len(c.Services))
	for s := range c.Services {
		svc := &c.Services[s]
		names = append(names, svc.Name)
		sh.clusters = append(sh.clusters, &cluster.Cluster{
			Name:                 svc.Name,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: svc.Name},
			ConnectTimeout:       durationpb.New(5 * time.Second),
		})
		// passing and warning instances serve; critical ones are left out.
		lbs := []*endpoint.LbEndpoint{}
		for i := range svc.Instances {
			inst := &svc.Instances[i]
			if inst.Health == "critical" {
				continue
			}
			port := inst.Port
			if inst.meshed() {
				port = inst.SidecarPort
			}
			lbs = append(lbs, &endpoint.LbEndpoint{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address:  socket(inst.Address, port),
					Hostname: inst.ID,
				}},
				HealthStatus: core.HealthStatus_HEALTHY,
			})
		}
		cla := &endpoint.ClusterLoadAssignment{ClusterName: svc.Name}
		if len(lbs) > 0 {
			cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
		}
		sh.endpoints = append(sh.endpoints, cla)
		vhosts = append(vhosts, &route.VirtualHost{
			Name: svc.Name,
			Domains: []string{
				svc.Name, svc.Name + ":*",
				svc.Name + "." + domainSuffix, svc.Name + "." + domainSuffix + ":*",
			},
			// Named <service>/<index> as lucid-mesh names them (for %ROUTE_NAME% in access logs).
			Routes: []*route.Route{{
				Name:   svc.Name + "/0",
				Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: svc.Name}}},
			}},
		})
	}
	sh.routes = []types.Resource{&route.RouteConfiguration{Name: "outbound", VirtualHosts: vhosts}}
	sh.listeners = []types.Resource{hcmListener(
		fmt.Sprintf("outbound|http|%d", outboundPort),
		socket("127.0.0.1", outboundPort),
		core.TrafficDirection_OUTBOUND,
		&hcm.HttpConnectionManager{
			StatPrefix: "outbound_http",
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
				ConfigSource: adsSource(), RouteConfigName: "outbound",
			}},
			HttpFilters: []*hcm.HttpFilter{
				httpFilter("envoy.filters.http.fault", &fault.HTTPFault{}),
				httpFilter("envoy.filters.http.router", &router.Router{}),
			},
		},
	)}
	if dnsPort != 0 {
		sh.listeners = append(sh.listeners, dnsListener(dnsPort, names))
	}
	joined := strings.Join(names, ",")
	sh.clusterVersion = "c" + versionOf(joined)
	sh.routeVersion = "r" + versionOf(joined)
	sh.listenerVersion = "l" + versionOf(fmt.Sprint(outboundPort, dnsPort), joined)
	return sh
}

func localAppCluster(inst *instanceDoc) *cluster.Cluster {
	name := "local_app|" + inst.ID
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address: socket("127.0.0.1", inst.Port),
				}},
			}}}},
		},
		// As lucid-mesh: idle connections to the app closed after 4 s (docs/local-app.md).
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&upstreamhttp.HttpProtocolOptions{
				CommonHttpProtocolOptions: &core.HttpProtocolOptions{IdleTimeout: durationpb.New(4 * time.Second)},
				UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
							HttpProtocolOptions: &core.Http1ProtocolOptions{},
						},
					},
				},
			}),
		},
	}
}

func inboundListener(inst *instanceDoc) *listener.Listener {
	name := "inbound|" + inst.ID
	return hcmListener(name, socket("0.0.0.0", inst.SidecarPort), core.TrafficDirection_INBOUND,
		&hcm.HttpConnectionManager{
			StatPrefix: "inbound_http",
			RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
				Name: name,
				VirtualHosts: []*route.VirtualHost{{
					Name:    "local_app",
					Domains: []string{"*"},
					Routes: []*route.Route{{
						Name:   name,
						Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
						Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "local_app|" + name[len("inbound|"):]}}},
					}},
				}},
			}},
			HttpFilters: []*hcm.HttpFilter{httpFilter("envoy.filters.http.router", &router.Router{})},
		},
	)
}
