"""Blood bank reports: stock, utilisation, outdates, wastage, crossmatch-to-transfusion ratio, donation
trends; CSV and PDF exports."""
