/**
 * `policy check` as a use case: for every workload among generated resources, the requests its
 * runtime will send, evaluated against the policy it carries — with the same policy inputs
 * (images, ConfigMaps, Secrets, settings) as `generate` computed it from.
 */
import { UserError, locate } from '../util/errors.js';
import type { ImageResolverLike } from '../images/types.js';
import type { InputFile } from '../resources/inputs.js';
import { checkPolicy, type PolicyCheckReport, type PolicySettings } from '../policy/index.js';
import { INITDATA_ANNOTATION, POLICY_KEY } from '../policy/initdata.js';
import { carriedPolicies, decodeCarried, workloadName } from './carried-policies.js';
import { imageLookup, imagesOf, resolveImages } from './image-step.js';
import { envSourceNames, policyContext, policyInput } from './policy-step.js';
import { allResources, envSourcesNamed, parseInput } from './read-step.js';

export interface CheckOptions {
  imageResolver: ImageResolverLike;
  settings: PolicySettings;
  /** The pause image the policies were generated with. */
  pauseImage: string;
}

export interface WorkloadCheck extends PolicyCheckReport {
  /** "Deployment shop/web". */
  resource: string;
  hash: string;
}

export async function checkCarriedPolicies(inputs: InputFile[], options: CheckOptions): Promise<WorkloadCheck[]> {
  const parsed = inputs.map(parseInput);
  const carried = carriedPolicies(allResources(parsed));
  if (carried.length === 0)
    throw new UserError(
      `no resource with a policy (annotation ${INITDATA_ANNOTATION}) found`,
      {},
      { nextStep: 'run generate first' },
    );
  const images = await resolveImages(options.imageResolver, [
    options.pauseImage,
    ...carried.flatMap((p) => imagesOf(p.template.spec)),
  ]);
  const ctx = policyContext(
    envSourcesNamed(parsed, envSourceNames(carried.map((p) => p.template.spec))),
    imageLookup(images),
    options.pauseImage,
    options.settings,
  );
  const out: WorkloadCheck[] = [];
  for (const p of carried) {
    const decoded = decodeCarried(p);
    const text = decoded.init.data[POLICY_KEY];
    if (text === undefined) throw new UserError(`initdata has no ${POLICY_KEY}`, p.resource.location);
    let report: PolicyCheckReport;
    try {
      report = await checkPolicy(text, policyInput(p.ref, p.resource, p.template, ctx));
    } catch (err) {
      throw locate(err, p.resource.location);
    }
    out.push({ resource: workloadName(p.ref), hash: decoded.hash, ...report });
  }
  return out;
}
