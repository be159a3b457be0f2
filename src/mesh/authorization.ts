// Who may call a service: the policy file's answer (planes, rules, defaults) and Consul's
// service-intentions, kept apart so the translator can make both count (deny wins: an
// intention can never open what the policy closes, e.g. an isolated plane).
import { allowedSources } from '../policy/evaluate.js';
import type { Policy } from '../policy/schema.js';
import type { ServiceIntentions } from '../traffic/types.js';
import type { Authorization, IntentionRule, MeshSettings } from './types.js';

/**
 * Consul's precedence among the sources of one destination: exact names before the
 * wildcard, so a named caller's own intention decides for it and `*` covers everyone else.
 */
function intentionRules(entry: ServiceIntentions): IntentionRule[] {
  // A source elsewhere (a peer's web) is no rule for this mesh's service of that name.
  const here = entry.Sources.filter((s) => s.Elsewhere === undefined);
  const exact = here.filter((s) => s.Name !== '*');
  const wildcard = here.filter((s) => s.Name === '*');
  return [...exact, ...wildcard].map((s) => ({
    source: s.Name,
    ...(s.Action !== undefined ? { action: s.Action } : {}),
    ...(s.Permissions !== undefined ? { permissions: s.Permissions } : {}),
  }));
}

export function authorizationOf(
  service: string,
  policy: Policy | undefined,
  intentions: ServiceIntentions | undefined,
  settings: MeshSettings,
): Authorization {
  return {
    // The policy's answer depends only on the policy and the destination (see rbac): no
    // catalog services are passed, so catalog edits never change it.
    ...(policy ? { policy: allowedSources(policy, service) } : {}),
    ...(intentions
      ? { intentions: { rules: intentionRules(intentions), default: settings.intentionsDefault } }
      : settings.intentionsDefault === 'deny'
        ? // Consul's default (its ACL default policy) holds for every destination, also one no
          // service-intentions entry names: with deny, such a service takes no mesh callers.
          { intentions: { rules: [], default: 'deny' as const } }
        : {}),
  };
}
