/** AMD EPYC product lines whose SEV-SNP root keys we pin. */
export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';
export const SNP_PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

export function isSnpProduct(s: string): s is SnpProduct {
  return (SNP_PRODUCTS as readonly string[]).includes(s);
}

/**
 * Product line from the CPUID family/model that v3+ reports carry. The ranges follow the
 * published processor families; stepping is deliberately ignored (hosts misreport it).
 */
export function productFromCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === 0x19 && model <= 0x0f) return 'Milan';
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) return 'Genoa';
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/**
 * Turin and later use the FMC-first TCB layout and 8-byte chip ids; Milan and Genoa the
 * original layout.
 */
export function usesTurinLayout(product: SnpProduct): boolean {
  return product === 'Turin';
}

/** VCEK/VLEK productName is `<line>` or `<line>-<stepping>`; only the line is meaningful. */
export function productLine(productName: string): string {
  const dash = productName.indexOf('-');
  return dash < 0 ? productName : productName.slice(0, dash);
}
