/**
 * YAML 1.1 as Kubernetes reads it. Kubernetes decodes resources with go-yaml v2, whose plain
 * scalar resolution differs from the `yaml` package's 1.1 schema in three places; where they
 * differ we follow Kubernetes, or a value we compute a policy for would not be the value the
 * cluster sees:
 * - exponent floats need digits: `E0` and `e5` are strings (the package reads them as NaN);
 * - no sexagesimal numbers: `12:30` is a string (the package reads 750);
 * - no implicit timestamps: `2001-12-14` stays a string (the package makes a Date).
 */
import type { ScalarTag, Tags } from 'yaml';

const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)[eE][-+]?[0-9]+$/;

function isScalarTag(tag: Tags[number]): tag is ScalarTag {
  return typeof tag === 'object' && tag !== null && 'tag' in tag && !('collection' in tag && tag.collection);
}

export function kubernetesTags(tags: Tags): Tags {
  return tags
    .filter((t) => !(isScalarTag(t) && (t.format === 'TIME' || t.tag === 'tag:yaml.org,2002:timestamp')))
    .map((t) =>
      isScalarTag(t) && t.tag === 'tag:yaml.org,2002:float' && t.format === 'EXP' ? { ...t, test: FLOAT_EXP } : t,
    );
}
