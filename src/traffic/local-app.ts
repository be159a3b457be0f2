// proxy-defaults' Config key for the sidecar → app connection idle timeout (docs/local-app.md).
// A lucid_ key rather than Consul's `local_idle_timeout_ms`: Consul sets that one as the local
// app route's stream idle timeout (agent/xds/listeners.go), which does not close idle
// connections, so the same name would promise something else.
export const LOCAL_APP_IDLE_TIMEOUT_KEY = 'lucid_local_app_idle_timeout_ms';
