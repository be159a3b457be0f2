// The CA's public surface (docs/ca.md): import from here rather than from the parts.
export { CertificateAuthority } from './authority.js';
export type { CertificateAuthorityOptions, OperatorCa, RootsChange } from './authority.js';
export { systemClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { CaMaterialError, KEY_TYPES } from './crypto.js';
export type { KeyType } from './crypto.js';
export { FileCaStore } from './file-store.js';
export type { FileCaStoreOptions } from './file-store.js';
export { LeafManager, RENEW_FROM, RENEW_TO } from './leaf-manager.js';
export type { CaChange, CaChangeListener, LeafManagerOptions } from './leaf-manager.js';
export { openCa, readOperatorCa } from './open.js';
export type { OpenCaOptions, OpenedCa, SharedState } from './open.js';
export {
  CaSettingsError,
  DEFAULT_LEAF_TTL_MS,
  DEFAULT_TOKEN_TTL_MS,
  autoRotateFromEnv,
  defaultDataDir,
  leafTtlFromEnv,
  parseDuration,
} from './settings.js';
export {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  spiffeId,
  trustDomainPrefix,
} from './spiffe.js';
export { MemoryCaStore } from './store.js';
export { ConsulKvCaStore } from './state/consul-store.js';
export { EtcdCaStore } from './state/etcd-store.js';
export { KvCaStore } from './state/kv-store.js';
export { StateCipher, StateKeyError, readStateKeyFile } from './state/cipher.js';
export type { CaStore, RootsMutation } from './store.js';
export { OPERATOR_SCOPES, TOKEN_KINDS } from './revocations.js';
export type { OperatorScope, TokenKind, TokenRecord, TokensMutation } from './revocations.js';
export { TokenAuthority, TokenError } from './tokens.js';
export type {
  OperatorTokenRequest,
  TokenFailure,
  VerifiedOperatorToken,
  VerifiedProxyToken,
} from './tokens.js';
export type {
  CertificateExpiry,
  ExpiryReport,
  IssuedLeaf,
  LeafRecord,
  RootInfo,
  RootState,
  StoredRoot,
} from './types.js';
