import { apiKeyById, createApiKey, listApiKeys, revokeApiKey } from './service.js';
import { computeBudget, mayCompute } from '../terms/compute-policy.js';
import { connectionFields } from '../../platform/graphql/connections.js';
import type { Resolvers } from '../generated/types.js';
import { parseId } from '../../platform/graphql/inputs.js';

/** API keys and the caller's identity. Roles are enforced before these run (src/platform/auth/authorize.ts). */
export const apiKeyResolvers: Resolvers = {
  Query: {
    viewer: async (_, __, ctx) => ({
      role: ctx.caller.role,
      apiKey: ctx.caller.key ? await apiKeyById(ctx.db, ctx.caller.key.id) : null,
      authRequired: ctx.config.authRequired,
      canCompute: mayCompute(ctx.config, ctx.caller),
      computeBudget: await computeBudget(ctx),
    }),
    apiKeys: (_, args, ctx) => listApiKeys(ctx.db, args, ctx.config.maxPageSize),
  },
  Mutation: {
    createApiKey: async (_, { input }, ctx) => {
      const { key, secret } = await createApiKey(ctx.db, input);
      ctx.log.info({ keyId: key.id, name: key.name, role: key.role, by: ctx.caller.key?.id ?? 'open' }, 'API key created');
      return { apiKey: key, secret };
    },
    revokeApiKey: async (_, { id }, ctx) => {
      const key = await revokeApiKey(ctx.db, parseId(id));
      // publishNow: this server drops the key from its cache before answering; the others on NOTIFY.
      await ctx.pubsub.publishNow('apiKeyRevoked', { keyId: key.id });
      ctx.log.info({ keyId: key.id, by: ctx.caller.key?.id ?? 'open' }, 'API key revoked');
      return key;
    },
  },
  ApiKeyConnection: connectionFields,
};
