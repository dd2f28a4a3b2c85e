"""Language-model initialisation (Reid, Yamada & Gu 2022), a capability any family with a
transformer trunk can use: its config derives from `LMInitConfig`, and it calls
`configure_trunk` when it builds its model.

    config.py      LMInitConfig: --init, --freeze-trunk, --lora-rank, --align-weight, --cotrain-weight, ...
    sources.py     where a trunk comes from (scratch, a run, a local GPT-2, a pretrain-lm run) and how it is copied in
    objectives.py  the alignment loss and language-model co-training, as loss terms
    text.py        text corpora and tokenizers for co-training and for `seqrl pretrain-lm`
"""
