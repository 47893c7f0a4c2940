"""The capstone experiment: arms, paired statistics and the report."""
