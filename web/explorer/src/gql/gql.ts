/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Viewer {\n    viewer {\n      role\n      authRequired\n      canCompute\n    }\n    serverInfo {\n      version\n      database\n    }\n  }\n": typeof types.ViewerDocument,
    "\n  query CheckpointPage($id: ID!) {\n    checkpoint(id: $id) {\n      id\n      step\n      epoch\n      learningRate\n      run {\n        id\n        name\n        model {\n          id\n          name\n          parameterSubsets {\n            name\n            parameterCount\n          }\n        }\n        dataset {\n          id\n          name\n          length\n          channels\n          classNames\n          sampleCount\n          splits {\n            split\n            count\n          }\n        }\n      }\n    }\n  }\n": typeof types.CheckpointPageDocument,
    "\n  query CheckpointKNormStats($id: ID!, $subset: String!, $bins: Int!) {\n    checkpoint(id: $id) {\n      id\n      termStats(term: K_NORM, subset: $subset) {\n        count\n        mean\n        min\n        max\n        quantiles {\n          p\n          value\n        }\n        histogram(bins: $bins) {\n          bins {\n            lower\n            upper\n            count\n          }\n        }\n        byClass {\n          label\n          className\n          count\n          histogram(bins: $bins) {\n            bins {\n              lower\n              upper\n              count\n            }\n          }\n        }\n      }\n    }\n  }\n": typeof types.CheckpointKNormStatsDocument,
    "\n  query CheckpointExportUrl($id: ID!, $subset: String!) {\n    checkpoint(id: $id) {\n      id\n      exportUrl(format: JSONL, orderBy: { term: LOSS, direction: ASC }, subset: $subset)\n    }\n  }\n": typeof types.CheckpointExportUrlDocument,
    "\n  query CheckpointRanked($id: ID!, $first: Int!, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder!, $subset: String!, $target: TargetSetInput) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, subset: $subset, target: $target) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        nodes {\n          sampleId\n          index\n          label\n          className\n          split\n          score\n          loss\n          correct\n          aNorm\n          hTrace\n          hMinEig\n          gNorm\n          kNorm\n          kTrace\n          kCross\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n": typeof types.CheckpointRankedDocument,
    "\n  query CheckpointSeries($id: ID!, $first: Int!, $ids: [ID!]!) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, filter: { sampleIds: $ids }, orderBy: { term: LOSS, direction: ASC }) {\n        nodes {\n          sampleId\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n": typeof types.CheckpointSeriesDocument,
};
const documents: Documents = {
    "\n  query Viewer {\n    viewer {\n      role\n      authRequired\n      canCompute\n    }\n    serverInfo {\n      version\n      database\n    }\n  }\n": types.ViewerDocument,
    "\n  query CheckpointPage($id: ID!) {\n    checkpoint(id: $id) {\n      id\n      step\n      epoch\n      learningRate\n      run {\n        id\n        name\n        model {\n          id\n          name\n          parameterSubsets {\n            name\n            parameterCount\n          }\n        }\n        dataset {\n          id\n          name\n          length\n          channels\n          classNames\n          sampleCount\n          splits {\n            split\n            count\n          }\n        }\n      }\n    }\n  }\n": types.CheckpointPageDocument,
    "\n  query CheckpointKNormStats($id: ID!, $subset: String!, $bins: Int!) {\n    checkpoint(id: $id) {\n      id\n      termStats(term: K_NORM, subset: $subset) {\n        count\n        mean\n        min\n        max\n        quantiles {\n          p\n          value\n        }\n        histogram(bins: $bins) {\n          bins {\n            lower\n            upper\n            count\n          }\n        }\n        byClass {\n          label\n          className\n          count\n          histogram(bins: $bins) {\n            bins {\n              lower\n              upper\n              count\n            }\n          }\n        }\n      }\n    }\n  }\n": types.CheckpointKNormStatsDocument,
    "\n  query CheckpointExportUrl($id: ID!, $subset: String!) {\n    checkpoint(id: $id) {\n      id\n      exportUrl(format: JSONL, orderBy: { term: LOSS, direction: ASC }, subset: $subset)\n    }\n  }\n": types.CheckpointExportUrlDocument,
    "\n  query CheckpointRanked($id: ID!, $first: Int!, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder!, $subset: String!, $target: TargetSetInput) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, subset: $subset, target: $target) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        nodes {\n          sampleId\n          index\n          label\n          className\n          split\n          score\n          loss\n          correct\n          aNorm\n          hTrace\n          hMinEig\n          gNorm\n          kNorm\n          kTrace\n          kCross\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n": types.CheckpointRankedDocument,
    "\n  query CheckpointSeries($id: ID!, $first: Int!, $ids: [ID!]!) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, filter: { sampleIds: $ids }, orderBy: { term: LOSS, direction: ASC }) {\n        nodes {\n          sampleId\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n": types.CheckpointSeriesDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Viewer {\n    viewer {\n      role\n      authRequired\n      canCompute\n    }\n    serverInfo {\n      version\n      database\n    }\n  }\n"): (typeof documents)["\n  query Viewer {\n    viewer {\n      role\n      authRequired\n      canCompute\n    }\n    serverInfo {\n      version\n      database\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CheckpointPage($id: ID!) {\n    checkpoint(id: $id) {\n      id\n      step\n      epoch\n      learningRate\n      run {\n        id\n        name\n        model {\n          id\n          name\n          parameterSubsets {\n            name\n            parameterCount\n          }\n        }\n        dataset {\n          id\n          name\n          length\n          channels\n          classNames\n          sampleCount\n          splits {\n            split\n            count\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query CheckpointPage($id: ID!) {\n    checkpoint(id: $id) {\n      id\n      step\n      epoch\n      learningRate\n      run {\n        id\n        name\n        model {\n          id\n          name\n          parameterSubsets {\n            name\n            parameterCount\n          }\n        }\n        dataset {\n          id\n          name\n          length\n          channels\n          classNames\n          sampleCount\n          splits {\n            split\n            count\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CheckpointKNormStats($id: ID!, $subset: String!, $bins: Int!) {\n    checkpoint(id: $id) {\n      id\n      termStats(term: K_NORM, subset: $subset) {\n        count\n        mean\n        min\n        max\n        quantiles {\n          p\n          value\n        }\n        histogram(bins: $bins) {\n          bins {\n            lower\n            upper\n            count\n          }\n        }\n        byClass {\n          label\n          className\n          count\n          histogram(bins: $bins) {\n            bins {\n              lower\n              upper\n              count\n            }\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query CheckpointKNormStats($id: ID!, $subset: String!, $bins: Int!) {\n    checkpoint(id: $id) {\n      id\n      termStats(term: K_NORM, subset: $subset) {\n        count\n        mean\n        min\n        max\n        quantiles {\n          p\n          value\n        }\n        histogram(bins: $bins) {\n          bins {\n            lower\n            upper\n            count\n          }\n        }\n        byClass {\n          label\n          className\n          count\n          histogram(bins: $bins) {\n            bins {\n              lower\n              upper\n              count\n            }\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CheckpointExportUrl($id: ID!, $subset: String!) {\n    checkpoint(id: $id) {\n      id\n      exportUrl(format: JSONL, orderBy: { term: LOSS, direction: ASC }, subset: $subset)\n    }\n  }\n"): (typeof documents)["\n  query CheckpointExportUrl($id: ID!, $subset: String!) {\n    checkpoint(id: $id) {\n      id\n      exportUrl(format: JSONL, orderBy: { term: LOSS, direction: ASC }, subset: $subset)\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CheckpointRanked($id: ID!, $first: Int!, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder!, $subset: String!, $target: TargetSetInput) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, subset: $subset, target: $target) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        nodes {\n          sampleId\n          index\n          label\n          className\n          split\n          score\n          loss\n          correct\n          aNorm\n          hTrace\n          hMinEig\n          gNorm\n          kNorm\n          kTrace\n          kCross\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query CheckpointRanked($id: ID!, $first: Int!, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder!, $subset: String!, $target: TargetSetInput) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, subset: $subset, target: $target) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        nodes {\n          sampleId\n          index\n          label\n          className\n          split\n          score\n          loss\n          correct\n          aNorm\n          hTrace\n          hMinEig\n          gNorm\n          kNorm\n          kTrace\n          kCross\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CheckpointSeries($id: ID!, $first: Int!, $ids: [ID!]!) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, filter: { sampleIds: $ids }, orderBy: { term: LOSS, direction: ASC }) {\n        nodes {\n          sampleId\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query CheckpointSeries($id: ID!, $first: Int!, $ids: [ID!]!) {\n    checkpoint(id: $id) {\n      id\n      rankedSamples(first: $first, filter: { sampleIds: $ids }, orderBy: { term: LOSS, direction: ASC }) {\n        nodes {\n          sampleId\n          sample {\n            id\n            series\n          }\n        }\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;