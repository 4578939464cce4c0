"""ASV (s3prl: sv_voxceleb1): speaker verification on VoxCeleb1 trial lists, EER and minDCF."""
