"""Genome w0leak: does a synapse whose weight STDP brought to 0 still make its target a candidate (so it leaks)?"""
import json
src = json.load(open('/work/shared/feagi-reference/stdp/fracw.genome.json'))
g = {k: v for k, v in src.items() if k != 'blueprint'}
g['genome_id'] = g['genome_title'] = 'w0leak'
bp = {}
def area(cid, name, thr=1.0, leak=0.0, acc=False, refrac=0, dst=None):
    p = f'_____10c-{cid}-'
    bp.update({p+'cx-___bbx-i': 1, p+'cx-___bby-i': 1, p+'cx-___bbz-i': 1, p+'cx-__name-t': name,
               p+'cx-_group-t': 'CORE' if cid == '_power' else 'CUSTOM', p+'cx-dstmap-d': dst or {},
               p+'cx-pspuni-b': True, p+'nx-fire_t-f': thr, p+'nx-mp_acc-b': acc, p+'nx-pstcr_-f': 1.0,
               p+'nx-refrac-i': refrac, p+'nx-leak_c-f': leak})
def rule(psc, plastic=False, c=1, ltp=0, ltd=1, w=1):
    return ['projector', [1, 1, 1], psc, plastic, c, ltp, ltd, w] if plastic else ['projector', [1, 1, 1], psc, False, 1, 1, 1]
area('_power', 'Brain_Power', thr=0.5, dst={'cPreA0': [rule(1)], 'cDrv00': [rule(1)]})
# P fires every burst from burst 2; its plastic synapses lose 1 per burst (post silent): 1 -> 0 after burst 2
area('cPreA0', 'pre_always', dst={'cT7a00': [rule(1, True)], 'cT10a0': [rule(1, True)],
                                  'cT7w20': [rule(2, True, w=1)], 'cZr070': [rule(0)]})
# D fires at 2, 7, 12, ... (refractory 4): 5 into each target at 3, 8, 13, ...
area('cDrv00', 'drv_refrac4', refrac=4, dst={t: [rule(5)] for t in ('cT7a00', 'cT10a0', 'cT7w20', 'cC7000', 'cC1000', 'cZr070')})
area('cT7a00', 'w0_thr7_leak0.1', thr=7, leak=0.1, acc=True)
area('cT10a0', 'w0_thr10_leak0.1', thr=10, leak=0.1, acc=True)
area('cT7w20', 'w2to0_thr7_leak0.1', thr=7, leak=0.1, acc=True)
area('cC7000', 'ctl_thr7_leak0.1', thr=7, leak=0.1, acc=True)
area('cC1000', 'ctl_thr10_leak0.1', thr=10, leak=0.1, acc=True)
area('cZr070', 'psc0_thr7_leak0.1', thr=7, leak=0.1, acc=True)
g['blueprint'] = bp
json.dump(g, open('w0leak.genome.json', 'w'), indent=1)
